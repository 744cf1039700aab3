//! `raftlab-node`: one replica of a raftlab cluster (see `--help`).

use clap::Parser;
use node::config::{Config, Flags};

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let config = match Config::resolve(Flags::parse()) {
        Ok(config) => config,
        Err(why) => {
            eprintln!("raftlab-node: {why}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("starting the tokio runtime");
    if let Err(why) = runtime.block_on(node::run(config)) {
        eprintln!("raftlab-node: {why}");
        std::process::exit(2);
    }
}
