//! placeholder: the realmq dialect arrives with its issue.
