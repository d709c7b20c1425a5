//! placeholder: the easemob dialect arrives with its issue.
