;; cortex.log with a zero-length message, forever. Empty lines cost 0 bytes of the log budget,
;; so this probes whether the number of lines (not only their bytes) is bounded.
(module
  (import "cortex" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $log_nothing_forever (export "run") (param $ptr i32) (param $len i32) (result i32)
    (loop $again
      (call $log (i32.const 1) (i32.const 16) (i32.const 0))
      (br $again))
    (i32.const 0))
)
