;; Spends its time in WASI: clock_time_get(MONOTONIC) in a loop, forever.
(module
  (import "wasi_snapshot_preview1" "clock_time_get"
    (func $clock_time_get (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $read_clock_forever (export "run") (param $ptr i32) (param $len i32) (result i32)
    (loop $again
      (drop (call $clock_time_get (i32.const 1) (i64.const 1) (i32.const 64)))
      (br $again))
    (i32.const 0))
)
