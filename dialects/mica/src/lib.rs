//! placeholder: the mica dialect
