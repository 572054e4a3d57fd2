#!/usr/bin/env python3
"""The modules of issue 15's loading rows and the parallel-compile measurement, as .wasm.

usage: load-rows.py spilled [LOCALS=49990] [DEPTH=10] [STACK=9000] | many N first|last
       | table [N=999999] | big [N=3000]  > out.wasm
"""
import sys

def uleb(n):
    out = bytearray()
    while True:
        b = n & 0x7f; n >>= 7
        if n: out.append(b | 0x80)
        else: out.append(b); return bytes(out)

def sleb(n):
    out = bytearray()
    while True:
        b = n & 0x7f; n >>= 7
        if (n == 0 and not b & 0x40) or (n == -1 and b & 0x40):
            out.append(b); return bytes(out)
        out.append(b | 0x80)

def vec(items):
    items = list(items)
    return uleb(len(items)) + b''.join(items)

def section(id, payload):
    return bytes([id]) + uleb(len(payload)) + payload

def name(s):
    s = s.encode(); return uleb(len(s)) + s

I32 = 0x7f
def functype(params, results):
    return b'\x60' + vec(bytes([p]) for p in params) + vec(bytes([r]) for r in results)

def body(locals_, code):
    # locals_: list of (count, type)
    b = vec(uleb(c) + bytes([t]) for c, t in locals_) + code + b'\x0b'
    return uleb(len(b)) + b

def i32const(v): return b'\x41' + sleb(v)
def local_get(i): return b'\x20' + uleb(i)
def local_set(i): return b'\x21' + uleb(i)
def call(i): return b'\x10' + uleb(i)
ADD, SUB, GTS, DROP = b'\x6a', b'\x6b', b'\x4a', b'\x1a'

def module(types, funcs, exports, tables=None, elems=None, memory=False):
    out = b'\x00asm\x01\x00\x00\x00'
    out += section(1, vec(types))
    out += section(3, vec(uleb(t) for t, _ in funcs))
    if tables: out += section(4, vec(tables))
    if memory: out += section(5, vec([b'\x00\x01']))
    out += section(7, vec(name(n) + b'\x00' + uleb(i) for n, i in exports))
    if elems: out += section(9, vec(elems))
    out += section(10, vec(b for _, b in funcs))
    return out

def spilled(n=49_990, depth=10, stack=9_000):
    # f(d): n locals set from d and `stack` values on the operand stack, all live across
    # the recursive call f(d-1), then all summed (the most a function may keep: 50 000
    # locals and 10 000 operand-stack values are the limits).
    code = bytearray()
    for i in range(n):
        code += local_get(0) + i32const(i) + ADD + local_set(1 + i)
    for i in range(stack):
        code += local_get(0) + i32const(i * 3)  + b'\x6c'  # d * 3i
    code += local_get(0) + i32const(0) + GTS + b'\x04\x40' + local_get(0) + i32const(1) + SUB + call(0) + DROP + b'\x0b'
    for i in range(stack - 1):
        code += ADD
    for i in range(n):
        code += local_get(1 + i) + ADD
    f = body([(n, I32)], bytes(code))
    start = body([], i32const(depth) + call(0) + DROP)
    return module([functype([I32], [I32]), functype([], [])], [(0, f), (1, start)], [('_start', 1)])

def many(n=100_000, which='first'):
    funcs = [(0, body([], local_get(0) + i32const(i) + ADD)) for i in range(n)]
    target = 0 if which == 'first' else n - 1
    funcs.append((1, body([], i32const(1) + call(target) + DROP)))
    return module([functype([I32], [I32]), functype([], [])], funcs, [('_start', n)])

def table(n=999_999):
    # n functions and `_start` (the 1 000 000 a module may have), all in a table of
    # 1 000 000 entries; `_start` calls the last and the first through `call_indirect`.
    funcs = [(0, body([], i32const(i))) for i in range(n)]
    ci = lambda k: i32const(k) + b'\x11' + uleb(0) + b'\x00' + DROP
    funcs.append((1, body([], ci(n - 1) + ci(0))))
    size = n + 1
    tables = [b'\x70\x01' + uleb(size) + uleb(size)]
    elems = [b'\x00' + i32const(0) + b'\x0b' + vec(uleb(i) for i in range(size))]
    return module([functype([], [I32]), functype([], [])], funcs, [('_start', n)], tables, elems)

def big(n=3000):
    # Each function: a loop with arithmetic, loads and stores, then a divide: ~200 bytes of code.
    funcs = []
    for i in range(n):
        a, b, it, s = 0, 1, 2, 3
        c = bytearray()
        c += local_get(a) + local_set(it)
        c += b'\x02\x40' + b'\x03\x40'  # block loop
        c += local_get(it) + local_get(b) + b'\x4f' + b'\x0d\x01'  # i32.ge_u br_if 1
        c += local_get(s) + local_get(it) + i32const(i * 7 + 3) + b'\x6c' + ADD + local_set(s)
        c += local_get(s) + local_get(s) + i32const(5) + b'\x76' + b'\x73' + local_set(s)
        c += local_get(it) + i32const(1020) + b'\x71' + local_get(s) + b'\x36\x02\x00'
        c += local_get(s) + local_get(s) + i32const(1020) + b'\x71' + b'\x28\x02\x00' + ADD + local_set(s)
        c += local_get(it) + i32const(1) + ADD + local_set(it) + b'\x0c\x00'  # br 0
        c += b'\x0b\x0b'
        c += local_get(s) + i32const(i * 13) + b'\x4b' + b'\x04\x7f'
        c += local_get(s) + i32const(i + 1) + b'\x70' + b'\x05'
        c += local_get(s) + i32const(i + 2) + b'\x6d' + b'\x0b'
        if i + 1 < n and i % 2 == 0:
            c += local_get(a) + local_get(b) + call(i + 1) + ADD
        funcs.append((0, body([(2, I32)], bytes(c))))
    funcs.append((1, body([], i32const(0) + i32const(10) + call(0) + DROP + i32const(0) + i32const(10) + call(n - 1) + DROP)))
    return module([functype([I32, I32], [I32]), functype([], [])], funcs, [('_start', n)], memory=True)

kind = sys.argv[1]
args = [int(a) if a.isdigit() else a for a in sys.argv[2:]]
sys.stdout.buffer.write({'spilled': spilled, 'many': many, 'table': table, 'big': big}[kind](*args))
