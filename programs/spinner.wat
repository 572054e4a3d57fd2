;; Loops forever without a syscall: the kernel preempts it every time slice, and the demo's
;; CPU-time limit ends it with `interrupted`.
(module
  (import "k23" "print" (func $print (param i32 i32) (result i32)))
  (memory 1)
  (data (i32.const 0) "spinner: looping forever\n")   ;; 25
  (func (export "_start")
    (drop (call $print (i32.const 0) (i32.const 25)))
    (loop $forever (br $forever))))
