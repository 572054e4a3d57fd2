/* Compute kernels of the comparison (benches/compare): the same source is compiled to
 * WebAssembly (clang -O2 --target=wasm32, no libc) and for the host (clang -O2), and each
 * runtime calls the same exported functions. Every kernel returns a checksum so that the
 * work cannot be optimised away and the runtimes can be checked against native code.
 * Freestanding: no libc, static arrays only. */

typedef unsigned int u32;
typedef unsigned long long u64;
typedef int i32;

#ifdef __wasm__
#define EXPORT(name) __attribute__((export_name(#name)))
#else
#define EXPORT(name) __attribute__((visibility("default")))
#endif

/* fib: recursive calls. */
static u32 fib_rec(u32 n) { return n < 2 ? n : fib_rec(n - 1) + fib_rec(n - 2); }
EXPORT(cb_fib) u32 cb_fib(u32 n) { return fib_rec(n); }

/* matrix multiply: n x n doubles, n <= 128. */
#define MAT_MAX 128
static double mat_a[MAT_MAX * MAT_MAX], mat_b[MAT_MAX * MAT_MAX], mat_c[MAT_MAX * MAT_MAX];
EXPORT(cb_matmul) u64 cb_matmul(u32 n) {
    if (n > MAT_MAX) n = MAT_MAX;
    for (u32 i = 0; i < n * n; i++) {
        mat_a[i] = (double)(i % 17) * 0.5;
        mat_b[i] = (double)(i % 13) * 0.25;
    }
    for (u32 i = 0; i < n; i++)
        for (u32 j = 0; j < n; j++) {
            double sum = 0.0;
            for (u32 k = 0; k < n; k++) sum += mat_a[i * n + k] * mat_b[k * n + j];
            mat_c[i * n + j] = sum;
        }
    double total = 0.0;
    for (u32 i = 0; i < n * n; i++) total += mat_c[i];
    return (u64)total;
}

/* sieve of Eratosthenes below n, n <= 4 Mi. */
#define SIEVE_MAX (4u << 20)
static unsigned char sieve_flags[SIEVE_MAX];
EXPORT(cb_sieve) u32 cb_sieve(u32 n) {
    if (n > SIEVE_MAX) n = SIEVE_MAX;
    for (u32 i = 0; i < n; i++) sieve_flags[i] = 1;
    u32 count = 0;
    for (u32 i = 2; i < n; i++) {
        if (!sieve_flags[i]) continue;
        count++;
        for (u32 j = i + i; j < n; j += i) sieve_flags[j] = 0;
    }
    return count;
}

/* sort: quicksort (insertion sort below 16) of n pseudo-random ints, n <= 1 Mi. */
#define SORT_MAX (1u << 20)
static i32 sort_data[SORT_MAX];
static void insertion(i32 *a, i32 lo, i32 hi) {
    for (i32 i = lo + 1; i <= hi; i++) {
        i32 v = a[i], j = i - 1;
        while (j >= lo && a[j] > v) { a[j + 1] = a[j]; j--; }
        a[j + 1] = v;
    }
}
static void quick(i32 *a, i32 lo, i32 hi) {
    while (hi - lo > 16) {
        i32 pivot = a[lo + (hi - lo) / 2], i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i <= j) { i32 t = a[i]; a[i] = a[j]; a[j] = t; i++; j--; }
        }
        if (j - lo < hi - i) { quick(a, lo, j); lo = i; }
        else { quick(a, i, hi); hi = j; }
    }
    insertion(a, lo, hi);
}
EXPORT(cb_sort) u64 cb_sort(u32 n) {
    if (n > SORT_MAX) n = SORT_MAX;
    u32 x = 12345;
    for (u32 i = 0; i < n; i++) { x = x * 1103515245u + 12345u; sort_data[i] = (i32)(x >> 1); }
    quick(sort_data, 0, (i32)n - 1);
    u64 check = 0;
    for (u32 i = 0; i < n; i += 97) check = check * 31 + (u32)sort_data[i];
    for (u32 i = 1; i < n; i++) if (sort_data[i - 1] > sort_data[i]) return 0;
    return check;
}

/* n-body: the five Jovian planets, `steps` steps. */
typedef struct { double x, y, z, vx, vy, vz, mass; } body;
#define PI 3.141592653589793
#define SOLAR_MASS (4 * PI * PI)
#define DAYS 365.24
static body bodies[5];
static void nbody_init(void) {
    body init[5] = {
        {0, 0, 0, 0, 0, 0, SOLAR_MASS},
        {4.84143144246472090e+00, -1.16032004402742839e+00, -1.03622044471123109e-01,
         1.66007664274403694e-03 * DAYS, 7.69901118419740425e-03 * DAYS,
         -6.90460016972063023e-05 * DAYS, 9.54791938424326609e-04 * SOLAR_MASS},
        {8.34336671824457987e+00, 4.12479856412430479e+00, -4.03523417114321381e-01,
         -2.76742510726862411e-03 * DAYS, 4.99852801234917238e-03 * DAYS,
         2.30417297573763929e-05 * DAYS, 2.85885980666130812e-04 * SOLAR_MASS},
        {1.28943695621391310e+01, -1.51111514016986312e+01, -2.23307578892655734e-01,
         2.96460137564761618e-03 * DAYS, 2.37847173959480950e-03 * DAYS,
         -2.96589568540237556e-05 * DAYS, 4.36624404335156298e-05 * SOLAR_MASS},
        {1.53796971148509165e+01, -2.59193146099879641e+01, 1.79258772950371181e-01,
         2.68067772490389322e-03 * DAYS, 1.62824170038242295e-03 * DAYS,
         -9.51592254519715870e-05 * DAYS, 5.15138902046611451e-05 * SOLAR_MASS}};
    for (int i = 0; i < 5; i++) bodies[i] = init[i];
    double px = 0, py = 0, pz = 0;
    for (int i = 0; i < 5; i++) {
        px += bodies[i].vx * bodies[i].mass;
        py += bodies[i].vy * bodies[i].mass;
        pz += bodies[i].vz * bodies[i].mass;
    }
    bodies[0].vx = -px / SOLAR_MASS;
    bodies[0].vy = -py / SOLAR_MASS;
    bodies[0].vz = -pz / SOLAR_MASS;
}
static double energy(void) {
    double e = 0.0;
    for (int i = 0; i < 5; i++) {
        body *b = &bodies[i];
        e += 0.5 * b->mass * (b->vx * b->vx + b->vy * b->vy + b->vz * b->vz);
        for (int j = i + 1; j < 5; j++) {
            body *c = &bodies[j];
            double dx = b->x - c->x, dy = b->y - c->y, dz = b->z - c->z;
            e -= b->mass * c->mass / __builtin_sqrt(dx * dx + dy * dy + dz * dz);
        }
    }
    return e;
}
EXPORT(cb_nbody) u64 cb_nbody(u32 steps) {
    nbody_init();
    const double dt = 0.01;
    for (u32 s = 0; s < steps; s++) {
        for (int i = 0; i < 5; i++) {
            body *b = &bodies[i];
            for (int j = i + 1; j < 5; j++) {
                body *c = &bodies[j];
                double dx = b->x - c->x, dy = b->y - c->y, dz = b->z - c->z;
                double d2 = dx * dx + dy * dy + dz * dz;
                double mag = dt / (d2 * __builtin_sqrt(d2));
                b->vx -= dx * c->mass * mag; b->vy -= dy * c->mass * mag; b->vz -= dz * c->mass * mag;
                c->vx += dx * b->mass * mag; c->vy += dy * b->mass * mag; c->vz += dz * b->mass * mag;
            }
        }
        for (int i = 0; i < 5; i++) {
            bodies[i].x += dt * bodies[i].vx;
            bodies[i].y += dt * bodies[i].vy;
            bodies[i].z += dt * bodies[i].vz;
        }
    }
    return (u64)(-energy() * 1e9);
}

/* hashing loop: FNV-1a over a 64 KiB buffer, then a 64-bit multiply-xorshift mix, `rounds`
 * times (the buffer changes every round). */
#define HASH_LEN (64u << 10)
static unsigned char hash_buf[HASH_LEN];
EXPORT(cb_hash) u64 cb_hash(u32 rounds) {
    for (u32 i = 0; i < HASH_LEN; i++) hash_buf[i] = (unsigned char)(i * 7 + (i >> 8));
    u64 acc = 0;
    for (u32 r = 0; r < rounds; r++) {
        u32 h = 2166136261u;
        for (u32 i = 0; i < HASH_LEN; i++) { h ^= hash_buf[i]; h *= 16777619u; }
        u64 m = acc ^ h;
        m ^= m >> 33; m *= 0xff51afd7ed558ccdull; m ^= m >> 33;
        acc = m;
        hash_buf[r % HASH_LEN] ^= (unsigned char)h;
    }
    return acc;
}

/* A CoreMark-like mix: linked-list walk and reversal, a matrix-times-vector in integers, a
 * state machine over a byte string and a CRC-16 of the results, `iters` times. */
#define LIST_LEN 256
typedef struct node { struct node *next; i32 value; } node;
static node list_nodes[LIST_LEN];
static i32 mix_mat[32 * 32], mix_vec[32], mix_out[32];
static const char mix_text[] = "5012,1.25e3,-42,abc,0x1f,77.5,,9e9,+3,-0.5e-2,hello,123456";
static u32 crc16(u32 crc, u32 data) {
    for (int i = 0; i < 16; i++) {
        u32 bit = (crc ^ data) & 1;
        data >>= 1;
        crc >>= 1;
        if (bit) crc ^= 0xa001;
    }
    return crc & 0xffff;
}
EXPORT(cb_mix) u32 cb_mix(u32 iters) {
    for (int i = 0; i < LIST_LEN; i++) {
        list_nodes[i].next = i + 1 < LIST_LEN ? &list_nodes[i + 1] : 0;
        list_nodes[i].value = (i * 37) % 101;
    }
    for (int i = 0; i < 32 * 32; i++) mix_mat[i] = (i * 13) % 29 - 14;
    for (int i = 0; i < 32; i++) mix_vec[i] = i - 16;
    node *head = &list_nodes[0];
    u32 crc = 0;
    for (u32 it = 0; it < iters; it++) {
        /* list: reverse, then sum values above a threshold */
        node *prev = 0, *cur = head;
        while (cur) { node *next = cur->next; cur->next = prev; prev = cur; cur = next; }
        head = prev;
        i32 sum = 0;
        for (node *n = head; n; n = n->next) if (n->value > (i32)(it & 63)) sum += n->value;
        /* matrix */
        for (int i = 0; i < 32; i++) {
            i32 acc = 0;
            for (int j = 0; j < 32; j++) acc += mix_mat[i * 32 + j] * mix_vec[j];
            mix_out[i] = acc;
        }
        mix_vec[it & 31] += 1;
        /* state machine: count integers, floats, hex and invalid fields */
        u32 counts[4] = {0, 0, 0, 0};
        int state = 0;
        for (const char *p = mix_text;; p++) {
            char c = *p;
            if (c == ',' || c == 0) {
                counts[state == 1 ? 0 : state == 2 || state == 3 ? 1 : state == 4 ? 2 : 3]++;
                state = 0;
                if (c == 0) break;
                continue;
            }
            switch (state) {
            case 0: state = (c >= '0' && c <= '9') ? (c == '0' ? 5 : 1) : (c == '-' || c == '+') ? 6 : 7; break;
            case 1: case 6: state = (c >= '0' && c <= '9') ? 1 : c == '.' ? 2 : (c == 'e' || c == 'E') ? 3 : 7; break;
            case 2: state = (c >= '0' && c <= '9') ? 2 : (c == 'e' || c == 'E') ? 3 : 7; break;
            case 3: state = ((c >= '0' && c <= '9') || c == '-' || c == '+') ? 3 : 7; break;
            case 5: state = c == 'x' ? 4 : (c >= '0' && c <= '9') ? 1 : c == '.' ? 2 : 7; break;
            case 4: state = ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) ? 4 : 7; break;
            default: state = 7; break;
            }
        }
        crc = crc16(crc, (u32)sum);
        for (int i = 0; i < 32; i++) crc = crc16(crc, (u32)mix_out[i]);
        for (int i = 0; i < 4; i++) crc = crc16(crc, counts[i]);
    }
    return crc;
}
