;; A function that tail-calls itself forever (tail-call proposal): no stack growth, so no
;; stack overflow; only the deadline ends it.
(module
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $forever (param $n i32) (result i32)
    (return_call $forever (i32.add (local.get $n) (i32.const 1))))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32)
    (call $forever (i32.const 0)))
)
