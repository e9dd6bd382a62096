;; memory.init from a passive segment after data.drop: a non-empty copy from a dropped segment traps.
(module
  (memory (export "memory") 1)
  (data $seg "secret")
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $init_from_dropped (export "run") (param $ptr i32) (param $len i32) (result i32)
    (data.drop $seg)
    (memory.init $seg (i32.const 0) (i32.const 0) (i32.const 6))
    (i32.const 0))
)
