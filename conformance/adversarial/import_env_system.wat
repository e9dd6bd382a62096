;; Imports env.system, as a C program calling system() would.
(module
  (import "env" "system" (func $system (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "rm -rf /\00")
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32)
    (drop (call $system (i32.const 16)))
    (i32.const 0))
)
