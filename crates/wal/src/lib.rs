//! wal (under construction)
