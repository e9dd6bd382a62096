;; Two linear memories (the multi-memory proposal), which the engine disables.
(module
  (memory $a (export "memory") 1)
  (memory $b (export "second") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func (export "run") (param $ptr i32) (param $len i32) (result i32)
    (i32.store $b (i32.const 0) (i32.load $a (i32.const 0)))
    (i32.const 0))
)
