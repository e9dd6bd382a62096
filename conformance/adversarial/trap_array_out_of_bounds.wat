;; array.get at index 5 of a 1-element GC array (GC proposal, which this engine leaves enabled).
(module
  (type $a (array (mut i32)))
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $read_past_array (export "run") (param $ptr i32) (param $len i32) (result i32)
    (array.get $a (array.new_default $a (i32.const 1)) (i32.const 5)))
)
