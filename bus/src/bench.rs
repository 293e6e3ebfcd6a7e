//! Backbone benchmark (filled in below).
