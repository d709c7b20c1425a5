//! placeholder: the nanomq dialect arrives with its issue.
