//! check (under construction)
