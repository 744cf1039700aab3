//! kv (under construction)
