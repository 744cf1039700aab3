//! replica (under construction)
