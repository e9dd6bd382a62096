;; The capability spins forever; only the wall-clock deadline (epoch interruption) can stop it.
(module
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $spin_forever (export "run") (param $ptr i32) (param $len i32) (result i32)
    (loop $again (br $again))
    (i32.const 0))
)
