"""Language-neutral conformance suite: vectors, a reference implementation, and a runner."""
