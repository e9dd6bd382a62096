;; Spends its time in host calls: cortex.log with a 1-byte message, forever. Only the few wasm
;; instructions around each host call burn fuel, so a small budget must still run out.
(module
  (import "cortex" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "x")
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $log_forever (export "run") (param $ptr i32) (param $len i32) (result i32)
    (loop $again
      (call $log (i32.const 1) (i32.const 16) (i32.const 1))
      (br $again))
    (i32.const 0))
)
