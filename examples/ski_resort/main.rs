//! The ski-resort streaming pipeline (placeholder entry point while the CLI lands).
#![allow(dead_code)]

mod catalog;
#[cfg(test)]
mod fake;
mod generator;
mod model;
mod progress;
mod queue;
mod report;
mod streamer;

fn main() {}
