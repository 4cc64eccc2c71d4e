//! The leader's side of replica fetches, over a real state.
