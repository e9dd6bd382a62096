;; ref.cast of an i31 reference to a struct type (GC proposal).
(module
  (type $s (struct (field i32)))
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $bad_cast (export "run") (param $ptr i32) (param $len i32) (result i32)
    (struct.get $s 0 (ref.cast (ref $s) (ref.i31 (local.get $len)))))
)
