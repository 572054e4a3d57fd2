;; The demo's init process: starts the other programs, then talks to `echo` over two
;; channels (one each way) and closes its end, which ends `echo`.
(module
  (import "k23" "print" (func $print (param i32 i32) (result i32)))
  (import "k23" "spawn" (func $spawn (param i32 i32 i32) (result i32)))
  (import "k23" "spawn_handles" (func $spawn_handles (param i32 i32 i32 i32) (result i32)))
  (import "k23" "channel" (func $channel (param i32) (result i32)))
  (import "k23" "send" (func $send (param i32 i32 i32) (result i32)))
  (import "k23" "recv" (func $recv (param i32 i32 i32) (result i32)))
  (import "k23" "close" (func $close (param i32) (result i32)))
  (import "k23" "exit" (func $exit (param i32)))
  (memory 1)
  ;; 0x000: texts
  (data (i32.const 0x000) "init: starting echo, ticker, spinner and faulty\n")   ;; 48
  (data (i32.const 0x040) "echo")
  (data (i32.const 0x048) "ticker")
  (data (i32.const 0x050) "spinner")
  (data (i32.const 0x058) "faulty")
  (data (i32.const 0x060) "hello 1")
  (data (i32.const 0x080) "init: echo replied ")                              ;; 19
  (data (i32.const 0x0a0) "init: done, closing the channel to echo\n")          ;; 40
  ;; 0x100: channel handles (A: init -> echo, B: echo -> init), 0x110: the handles echo gets
  ;; 0x200: the reply line
  (func $must (param $result i32)
    (if (i32.lt_s (local.get $result) (i32.const 0)) (then (call $exit (i32.const 1)))))
  (func (export "_start") (local $i i32) (local $n i32)
    (drop (call $print (i32.const 0x000) (i32.const 48)))
    (call $must (call $channel (i32.const 0x100)))
    (call $must (call $channel (i32.const 0x108)))
    ;; echo receives on A and sends on B.
    (i32.store (i32.const 0x110) (i32.load (i32.const 0x104)))
    (i32.store (i32.const 0x114) (i32.load (i32.const 0x108)))
    (call $must (call $spawn_handles (i32.const 0x040) (i32.const 4) (i32.const 0x110) (i32.const 2)))
    (call $must (call $spawn (i32.const 0x048) (i32.const 6) (i32.const -1)))
    (call $must (call $spawn (i32.const 0x050) (i32.const 7) (i32.const -1)))
    (call $must (call $spawn (i32.const 0x058) (i32.const 6) (i32.const -1)))
    (loop $next
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      ;; "hello N"
      (i32.store8 (i32.const 0x066) (i32.add (i32.const 48) (local.get $i)))
      (call $must (call $send (i32.load (i32.const 0x100)) (i32.const 0x060) (i32.const 7)))
      ;; The reply lands after the line's prefix.
      (memory.copy (i32.const 0x200) (i32.const 0x080) (i32.const 19))
      (local.set $n (call $recv (i32.load (i32.const 0x10c)) (i32.const 0x213) (i32.const 64)))
      (call $must (local.get $n))
      (i32.store8 (i32.add (i32.const 0x213) (local.get $n)) (i32.const 10))
      (drop (call $print (i32.const 0x200) (i32.add (local.get $n) (i32.const 20))))
      (br_if $next (i32.lt_u (local.get $i) (i32.const 3))))
    (drop (call $print (i32.const 0x0a0) (i32.const 40)))
    (call $must (call $close (i32.load (i32.const 0x100))))))
