//! MLLP codec (being written).
