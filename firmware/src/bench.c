// The MLPerf Tiny DUT protocol (see kws/bench.h for the commands and replies).
//
// Commands are held as (pointer, length) byte ranges, never as C strings: a command may contain any
// byte, and nothing here reads past KWS_BENCH_LINE_MAX. Every command is checked completely before it
// changes any state, so a refused command leaves the DUT as it was.
#include "kws/bench.h"

#include <string.h>

#include "kws/board.h"

#define BENCH_MAX_TOKENS 4

typedef struct {
    const char *p;
    size_t n;
} bench_tok;

// --- output ------------------------------------------------------------------------------------
static void put(const char *s, size_t n) { board_uart_write((const uint8_t *)s, n); }

static void puts_(const char *s) { put(s, strlen(s)); }

static void put_u64(uint64_t v) {
    char buf[20];
    size_t i = sizeof buf;
    do {
        buf[--i] = (char)('0' + (unsigned)(v % 10u));
        v /= 10u;
    } while (v != 0u && i > 0u);
    put(&buf[i], sizeof buf - i);
}

static void put_i32(int32_t v) {
    if (v < 0) {
        put("-", 1);
        put_u64((uint64_t)(-(int64_t)v));
    } else {
        put_u64((uint64_t)v);
    }
}

static void put_tok(bench_tok t) {
    // Echo at most 32 bytes of a token (already checked to be printable ASCII).
    put(t.p, t.n > 32u ? 32u : t.n);
    if (t.n > 32u) {
        puts_("...");
    }
}

static void end_line(void) { put("\r\n", 2); }

static void line(const char *s) {
    puts_(s);
    end_line();
}

// e-[<what><detail>]
static void err(const char *what) {
    puts_("e-[");
    puts_(what);
    puts_("]");
    end_line();
}

// --- time --------------------------------------------------------------------------------------
static void ticks_update(kws_bench *b) {
    const uint32_t now = board_ticks();
    b->ticks_high += (uint32_t)(now - b->last_ticks);
    b->last_ticks = now;
}

uint64_t kws_bench_us(kws_bench *b) {
    ticks_update(b);
    const uint64_t t = b->ticks_high - b->ticks0;
    uint64_t hz = board_ticks_hz();
    if (hz == 0u) {
        hz = 1u;
    }
    return (t / hz) * 1000000u + (t % hz) * 1000000u / hz;
}

static void timestamp(kws_bench *b) {
    if (b->cfg.energy_mode) {
        board_timestamp_pulse();
        ticks_update(b);
        return;
    }
    const uint64_t us = kws_bench_us(b);
    puts_("m-lap-us-");
    put_u64(us);
    end_line();
}

// --- parsing helpers ---------------------------------------------------------------------------
static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static bool tok_is(bench_tok t, const char *s) {
    const size_t n = strlen(s);
    return t.n == n && memcmp(t.p, s, n) == 0;
}

// Splits the line into at most BENCH_MAX_TOKENS tokens; returns how many there are in all (may be more
// than were stored).
static size_t tokenize(const char *s, size_t n, bench_tok *out) {
    size_t count = 0, i = 0;
    while (i < n) {
        while (i < n && is_space(s[i])) {
            i++;
        }
        if (i == n) {
            break;
        }
        const size_t start = i;
        while (i < n && !is_space(s[i])) {
            i++;
        }
        if (count < BENCH_MAX_TOKENS) {
            out[count].p = s + start;
            out[count].n = i - start;
        }
        count++;
    }
    return count;
}

// A decimal number 0..max; returns 0, -1 (not a number) or -2 (over max).
static int parse_uint(bench_tok t, uint32_t max, uint32_t *out) {
    if (t.n == 0u) {
        return -1;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < t.n; i++) {
        if (t.p[i] < '0' || t.p[i] > '9') {
            return -1;
        }
    }
    for (size_t i = 0; i < t.n; i++) {
        v = v * 10u + (uint64_t)(t.p[i] - '0');
        if (v > max) {
            return -2;
        }
    }
    *out = (uint32_t)v;
    return 0;
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// "<cmd>: 'tok' is not a number" / "...is over <max>"
static void err_number(const char *cmd, bench_tok t, int why, uint32_t max) {
    puts_("e-[");
    puts_(cmd);
    puts_(": '");
    put_tok(t);
    if (why == -1) {
        puts_("' is not a number]");
    } else {
        puts_("' is over ");
        put_u64(max);
        puts_("]");
    }
    end_line();
}

static void err_too_many(const char *cmd) {
    puts_("e-[");
    puts_(cmd);
    puts_(": too many arguments]");
    end_line();
}

// --- commands ----------------------------------------------------------------------------------
static void cmd_db(kws_bench *b, const bench_tok *t, size_t nt) {
    if (nt < 2) {
        err("db: needs a subcommand: load N, print or hex bytes");
        return;
    }
    if (tok_is(t[1], "load")) {
        if (nt < 3) {
            err("db load: needs the number of bytes");
            return;
        }
        if (nt > 3) {
            err_too_many("db load");
            return;
        }
        uint32_t n = 0;
        const int r = parse_uint(t[2], UINT32_MAX, &n);
        if (r != 0) {
            err_number("db load", t[2], r, UINT32_MAX);
            return;
        }
        if (n == 0u) {
            err("db load: the number of bytes must be > 0");
            return;
        }
        if (n > b->cfg.db_cap) {
            puts_("e-[db load: ");
            put_u64(n);
            puts_(" bytes is over the buffer's ");
            put_u64(b->cfg.db_cap);
            puts_("]");
            end_line();
            return;
        }
        b->loading = true;
        b->db_size = n;
        b->db_pos = 0;
        puts_("m-[Expecting ");
        put_u64(n);
        puts_(" bytes]");
        end_line();
        return;
    }
    if (tok_is(t[1], "print")) {
        if (nt > 2) {
            err_too_many("db print");
            return;
        }
        static const char digits[] = "0123456789abcdef";
        for (size_t i = 0; i < b->db_pos; i += 8u) {
            puts_("m-buffer-");
            for (size_t j = i; j < b->db_pos && j < i + 8u; j++) {
                const char hex[3] = {digits[b->cfg.db[j] >> 4], digits[b->cfg.db[j] & 15u], '-'};
                put(hex, (j + 1u < b->db_pos && j + 1u < i + 8u) ? 3u : 2u);
            }
            end_line();
        }
        return;
    }
    // db HH[HH]*: check everything, then copy.
    if (nt > 2) {
        err_too_many("db");
        return;
    }
    const bench_tok h = t[1];
    for (size_t i = 0; i < h.n; i++) {
        if (hex_value(h.p[i]) < 0) {
            puts_("e-[db: invalid hex digit '");
            put(&h.p[i], 1);
            puts_("']");
            end_line();
            return;
        }
    }
    if (h.n % 2u != 0u) {
        err("db: odd number of hex digits");
        return;
    }
    if (!b->loading) {
        err("db: no db load N before the data");
        return;
    }
    const size_t bytes = h.n / 2u;
    const size_t room = b->db_size - b->db_pos;
    if (bytes > room) {
        puts_("e-[db: ");
        put_u64(bytes);
        puts_(" bytes given, ");
        put_u64(room);
        puts_(" more expected]");
        end_line();
        return;
    }
    for (size_t i = 0; i < bytes; i++) {
        b->cfg.db[b->db_pos + i] = (uint8_t)(hex_value(h.p[2u * i]) * 16 + hex_value(h.p[2u * i + 1u]));
    }
    b->db_pos += bytes;
    if (bytes > 0u && b->db_pos == b->db_size) {
        line("m-load-done");
    }
}

static void print_results(kws_bench *b) {
    const int8_t *q = b->cfg.output(b->cfg.user);
    puts_("m-results-[");
    for (size_t i = 0; i < b->cfg.output_count; i++) {
        float v = (float)((int32_t)q[i] - b->cfg.output_zero_point) * b->cfg.output_scale;
        if (i > 0u) {
            put(",", 1);
        }
        if (v != v) {
            puts_("nan");
            continue;
        }
        if (v < 0.0f) {
            put("-", 1);
            v = -v;
        }
        if (!(v < 2.0e6f)) {
            puts_("inf");
            continue;
        }
        // Truncated to 3 decimals, as the reference KWS submission prints (int)(v * 1000) digit by digit.
        const uint32_t t = (uint32_t)(v * 1000.0f);
        const char frac[5] = {'.', (char)('0' + t / 100u % 10u), (char)('0' + t / 10u % 10u),
                              (char)('0' + t % 10u), 0};
        put_u64(t / 1000u);
        put(frac, 4);
    }
    puts_("]");
    end_line();
}

static void print_results_raw(kws_bench *b) {
    const int8_t *q = b->cfg.output(b->cfg.user);
    puts_("m-results-raw-[");
    for (size_t i = 0; i < b->cfg.output_count; i++) {
        if (i > 0u) {
            put(",", 1);
        }
        put_i32(q[i]);
    }
    puts_("]");
    end_line();
}

static void cmd_results(kws_bench *b, const bench_tok *t, size_t nt) {
    const bool raw = nt >= 2 && tok_is(t[1], "raw");
    if (nt > 2 || (nt == 2 && !raw)) {
        err("results: the only argument is raw");
        return;
    }
    if (!b->have_results) {
        err("results: no inference has run yet");
        return;
    }
    if (raw) {
        print_results_raw(b);
    } else {
        print_results(b);
    }
}

static void cmd_infer(kws_bench *b, const bench_tok *t, size_t nt) {
    uint32_t n = 1, w = 10;
    if (nt > 3) {
        err_too_many("infer");
        return;
    }
    if (nt >= 2) {
        const int r = parse_uint(t[1], KWS_BENCH_MAX_RUNS, &n);
        if (r != 0) {
            err_number("infer", t[1], r, KWS_BENCH_MAX_RUNS);
            return;
        }
        if (n == 0u) {
            err("infer: the number of inferences must be > 0");
            return;
        }
    }
    if (nt >= 3) {
        const int r = parse_uint(t[2], KWS_BENCH_MAX_RUNS, &w);
        if (r != 0) {
            err_number("infer", t[2], r, KWS_BENCH_MAX_RUNS);
            return;
        }
    }
    if (!b->loading) {
        puts_("e-[infer: no input loaded: db load ");
        put_u64(b->cfg.input_bytes);
        puts_(", then db <hex>]");
        end_line();
        return;
    }
    if (b->db_pos != b->db_size) {
        puts_("e-[infer: input incomplete: ");
        put_u64(b->db_pos);
        puts_(" of ");
        put_u64(b->db_size);
        puts_(" bytes loaded]");
        end_line();
        return;
    }
    if (b->db_size != b->cfg.input_bytes) {
        puts_("e-[infer: ");
        put_u64(b->db_size);
        puts_(" bytes loaded, the model takes ");
        put_u64(b->cfg.input_bytes);
        puts_("]");
        end_line();
        return;
    }
    puts_("m-warmup-start-");
    put_u64(w);
    end_line();
    for (uint32_t i = 0; i < w; i++) {
        b->cfg.run(b->cfg.db, b->cfg.input_bytes, b->cfg.user);
        ticks_update(b);
    }
    line("m-warmup-done");
    puts_("m-infer-start-");
    put_u64(n);
    end_line();
    timestamp(b);
    for (uint32_t i = 0; i < n; i++) {
        b->cfg.run(b->cfg.db, b->cfg.input_bytes, b->cfg.user);
        ticks_update(b);
    }
    timestamp(b);
    line("m-infer-done");
    b->have_results = true;
    print_results(b);
}

static void execute(kws_bench *b) {
    if (b->line_too_long) {
        puts_("e-[command too long: more than ");
        put_u64(KWS_BENCH_LINE_MAX);
        puts_(" bytes before %]");
        end_line();
    } else if (b->line_bad_byte) {
        err("command has a byte outside printable ASCII");
    } else {
        bench_tok t[BENCH_MAX_TOKENS];
        const size_t nt = tokenize(b->line, b->line_len, t);
        if (nt == 0u) {
            // empty command: m-ready only
        } else if (tok_is(t[0], "name")) {
            puts_("m-name-dut-[");
            puts_(b->cfg.name);
            puts_("]");
            end_line();
        } else if (tok_is(t[0], "profile")) {
            line("m-profile-[ULPMark for tinyML Firmware V0.0.1]");
            puts_("m-model-[");
            puts_(b->cfg.model);
            puts_("]");
            end_line();
        } else if (tok_is(t[0], "timestamp")) {
            timestamp(b);
        } else if (tok_is(t[0], "db")) {
            cmd_db(b, t, nt);
        } else if (tok_is(t[0], "infer")) {
            cmd_infer(b, t, nt);
        } else if (tok_is(t[0], "results")) {
            cmd_results(b, t, nt);
        } else if (tok_is(t[0], "help")) {
            line("m-help-[name profile timestamp | db load N | db HH[HH]* | db print | infer [N [W]] | "
                 "results [raw]]");
        } else {
            puts_("e-[Unknown command: ");
            put_tok(t[0]);
            puts_("]");
            end_line();
        }
    }
    line("m-ready");
    b->line_len = 0;
    b->line_too_long = false;
    b->line_bad_byte = false;
}

// --- public ------------------------------------------------------------------------------------
int kws_bench_init(kws_bench *b, const kws_bench_config *cfg) {
    if (b == NULL) {
        return -1;
    }
    memset(b, 0, sizeof *b);
    if (cfg == NULL || cfg->name == NULL || cfg->model == NULL || cfg->db == NULL || cfg->run == NULL ||
        cfg->output == NULL || cfg->input_bytes == 0u || cfg->db_cap < cfg->input_bytes ||
        cfg->output_count == 0u) {
        return -1;
    }
    b->cfg = *cfg;
    b->last_ticks = board_ticks();
    b->ticks_high = 0;
    b->ticks0 = 0;
    return 0;
}

void kws_bench_banner(kws_bench *b) {
    line(b->cfg.energy_mode ? "m-timestamp-mode-energy" : "m-timestamp-mode-performance");
    timestamp(b);
    line("m-init-done");
    line("m-ready");
}

void kws_bench_feed(kws_bench *b, const uint8_t *data, size_t len) {
    ticks_update(b);
    for (size_t i = 0; i < len; i++) {
        const uint8_t c = data[i];
        if (c == '%') {
            execute(b);
        } else if (b->line_too_long) {
            // discard until '%'
        } else if (!((c >= 0x20u && c < 0x7fu) || c == '\t' || c == '\r' || c == '\n')) {
            b->line_bad_byte = true;
        } else if (b->line_len == KWS_BENCH_LINE_MAX) {
            b->line_too_long = true;
        } else {
            b->line[b->line_len++] = (char)c;
        }
    }
}
