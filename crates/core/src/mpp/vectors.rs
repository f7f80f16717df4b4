//! The MPP test vectors (added with the vectors).
