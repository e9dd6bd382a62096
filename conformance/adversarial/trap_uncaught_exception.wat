;; throw with no handler anywhere (exception-handling proposal, which this engine leaves enabled).
(module
  (tag $boom (param i32))
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $throw_uncaught (export "run") (param $ptr i32) (param $len i32) (result i32)
    (throw $boom (i32.const 42)))
)
