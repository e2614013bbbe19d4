//! End-to-end tests of CloudRoutes: real node processes, real HTTP servers on 127.0.0.1.
//!
//! Each test starts its own node on a temp data dir and a free port (see [`common::Node`]).

mod api;
mod bad_input;
mod cluster;
mod common;
mod ctl;
mod egress;
mod gating;
mod intake;
mod persistence;
mod reactions;
mod redis_harness;
