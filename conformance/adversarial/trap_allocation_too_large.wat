;; array.new_default of 2^31-1 i64 elements (16 GiB) in one allocation (GC proposal).
(module
  (type $a (array (mut i64)))
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $allocate_16gib (export "run") (param $ptr i32) (param $len i32) (result i32)
    (array.len (array.new_default $a (i32.const 0x7fffffff))))
)
