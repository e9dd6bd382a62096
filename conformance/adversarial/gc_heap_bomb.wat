;; Allocates 64-KB GC arrays and keeps every one alive, 100,000 times (6.4 GB): the GC heap is
;; not linear memory, but its growth is refused at the store's memory limit (maxMemoryPages).
(module
  (type $a (array (mut i32)))
  (type $keep (array (mut (ref null $a))))
  (memory (export "memory") 1)
  (func (export "cortex_alloc") (param $size i32) (result i32) (i32.const 1024))
  (func $hoard_gc_memory (export "run") (param $ptr i32) (param $len i32) (result i32)
    (local $n i32) (local $all (ref null $keep))
    (local.set $all (array.new_default $keep (i32.const 100000)))
    (loop $again
      (array.set $keep (local.get $all) (local.get $n) (array.new_default $a (i32.const 16000)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $n) (i32.const 100000))))
    (i32.const 0))
)
