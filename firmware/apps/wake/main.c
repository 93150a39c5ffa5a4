// wake: the always-on wake-word loop.
//
// The board delivers audio in 20 ms blocks (board_audio_start; an interrupt on hardware and QEMU). The
// callback only copies each block into a FIFO; the main loop, per block (one hop): the C frontend makes
// one feature row; every KWS_DETECTOR_STRIDE_HOPS hops the compiled model scores the last
// KWS_DETECTOR_WINDOW_FRAMES rows and the integer detector (smoothing, threshold, refractory period:
// generated constants from the model's thresholds.json) decides. Between blocks the core sleeps
// (board_idle: WFI). On a detection: assert the wake line, freeze a copy of the last 1.5 s of audio (the
// pre-roll) for the host, and print
//   wake <label> <score 0..255> <t_ms>
// where t_ms is the end of the last hop's samples in the stream, exactly as `kws eval` times it.
//
// UART commands (`%`-terminated, as the MLPerf Tiny DUT protocol frames them):
//   preroll%   m-preroll-<end_sample>-<n> then n int16 samples as 4-digit little-endian hex, 32 per
//              line, then m-ready: the pre-roll frozen at the last detection, ending at stream sample
//              end_sample (exclusive); e-[no detection yet] before the first one.
//   status%    m-status-hops-<h>-overruns-<o>-detections-<d> then m-ready.
//   quit%      (builds with -DKWS_WAKE_LINGER=1 only) ends the app; see below.
// Anything else: e-[unknown command]. Over-long commands: e-[command too long].
//
// At the end of a finite stream (simulators) it prints the cost counters and exits:
//   wake: hops H invocations M detections D frontend_ticks F model_ticks T ticks_hz Z busy_ticks B
//         total_ticks A overruns O            (one line)
// busy_ticks is the time outside board_idle() from the first block to the end; overruns counts blocks
// that arrived while the FIFO was full (dropped; the stream time still advances). Built with
// -DKWS_WAKE_LINGER=1, it then keeps answering commands until quit% (a host reading the pre-roll of a
// finished stream).
//
// Generated headers (kws.compile.firmware writes them for a model folder): model.h (kws compile),
// kws_frontend_config.h (frontend tables), kws_detector_config.h (thresholds.json).
#include <stdint.h>
#include <string.h>

#include "kws/board.h"
#include "kws/detector.h"
#include "kws/frontend.h"
#include "kws/print.h"
#include "kws_detector_config.h"
#include "kws_frontend_config.h"
#include "model.h"

#define HOP KWS_FRONTEND_HOP_SAMPLES
#define ROW KWS_FRONTEND_ROW_SIZE
#define WF KWS_DETECTOR_WINDOW_FRAMES
#define STRIDE KWS_DETECTOR_STRIDE_HOPS

#ifndef KWS_WAKE_FIFO_HOPS
#define KWS_WAKE_FIFO_HOPS 8u  // blocks buffered while the model runs (power of two)
#endif
#define PREROLL (KWS_FRONTEND_SAMPLE_RATE_HZ * 3u / 2u)  // 1.5 s of samples
#define CMD_MAX 16u
#ifndef KWS_WAKE_LINGER
#define KWS_WAKE_LINGER 0
#endif

#if KWS_MODEL_INPUT0_BYTES != WF * ROW
#error "the model's input is not window_frames x the frontend's row size"
#endif
#ifndef KWS_MODEL_INPUT0_DTYPE_INT8
#error "the wake app needs an int8 model input (the frontend's codes)"
#endif
#if (KWS_WAKE_FIFO_HOPS & (KWS_WAKE_FIFO_HOPS - 1u)) != 0u || KWS_WAKE_FIFO_HOPS == 0u
#error "KWS_WAKE_FIFO_HOPS must be a power of two"
#endif
#if PREROLL % HOP != 0
#error "the pre-roll must be a whole number of hops"
#endif

static kws_frontend_t fe;
static kws_frontend_scratch_t scratch;
static kws_detector_t det;
static int8_t rows[WF][ROW];

// Audio FIFO: written by the board's audio callback (interrupt), read by the main loop.
static int16_t fifo[KWS_WAKE_FIFO_HOPS][HOP];
static uint32_t fifo_block[KWS_WAKE_FIFO_HOPS];  // each entry's block index in the stream
static volatile uint32_t blocks;                 // blocks delivered, dropped ones included
static volatile uint32_t fifo_head, fifo_tail, overruns, bad_blocks;
static volatile int stream_ended;

// Pre-roll: the last PREROLL samples processed (ring), and the copy frozen at the last detection.
static int16_t ring[PREROLL];
static uint32_t ring_pos;
static int16_t preroll[PREROLL];
static uint64_t preroll_end;  // stream sample index just after the frozen copy's last sample; 0 = none

static uint64_t hops, detections;
static int quit_requested;

static void on_block(const int16_t *samples, size_t n, void *user)
{
    (void)user;
    if (n == 0u) {
        stream_ended = 1;
        return;
    }
    if (n != HOP) {
        bad_blocks++;
        return;
    }
    const uint32_t b = blocks++;
    if (fifo_head - fifo_tail == KWS_WAKE_FIFO_HOPS) {
        overruns++;
        return;
    }
    memcpy(fifo[fifo_head % KWS_WAKE_FIFO_HOPS], samples, sizeof fifo[0]);
    fifo_block[fifo_head % KWS_WAKE_FIFO_HOPS] = b;
    fifo_head++;
}

static void print_hex16(const int16_t *x, uint32_t n)
{
    static const char digits[] = "0123456789abcdef";
    char line[32 * 4 + 1];
    for (uint32_t i = 0; i < n; i += 32u) {
        const uint32_t m = n - i < 32u ? n - i : 32u;
        for (uint32_t k = 0; k < m; k++) {
            const uint16_t v = (uint16_t)x[i + k];
            line[4 * k + 0] = digits[(v >> 4) & 15u];
            line[4 * k + 1] = digits[v & 15u];
            line[4 * k + 2] = digits[(v >> 12) & 15u];
            line[4 * k + 3] = digits[(v >> 8) & 15u];
        }
        line[4 * m] = '\n';
        board_uart_write((const uint8_t *)line, 4u * m + 1u);
    }
}

static void run_command(const char *cmd)
{
    if (strcmp(cmd, "preroll") == 0) {
        if (preroll_end == 0u) {
            kws_print("e-[no detection yet]\n");
        } else {
            kws_print_u64("m-preroll-", preroll_end);
            kws_print_u64("-", PREROLL);
            kws_print("\n");
            print_hex16(preroll, PREROLL);
        }
    } else if (strcmp(cmd, "status") == 0) {
        kws_print_u64("m-status-hops-", hops);
        kws_print_u64("-overruns-", overruns);
        kws_print_u64("-detections-", detections);
        kws_print("\n");
    } else if (KWS_WAKE_LINGER && strcmp(cmd, "quit") == 0) {
        quit_requested = 1;
    } else {
        kws_print("e-[unknown command]\n");
    }
    kws_print("m-ready\n");
}

// Reads what the UART holds; runs each complete `%`-terminated command. Spaces and line ends are ignored.
static void poll_commands(void)
{
    static char cmd[CMD_MAX + 1];
    static uint32_t len;
    static int too_long;
    uint8_t buf[32];
    size_t n;
    while ((n = board_uart_read(buf, sizeof buf)) > 0u) {
        for (size_t i = 0; i < n; i++) {
            const uint8_t c = buf[i];
            if (c == '%') {
                cmd[len] = '\0';
                if (too_long) {
                    kws_print("e-[command too long]\nm-ready\n");
                } else if (len > 0u) {
                    run_command(cmd);
                }
                len = 0u;
                too_long = 0;
            } else if (c == ' ' || c == '\r' || c == '\n') {
                continue;
            } else if (len < CMD_MAX) {
                cmd[len++] = (char)c;
            } else {
                too_long = 1;
            }
        }
    }
}

// block: the hop's index in the stream (dropped blocks included); `hops` counts the hops before it.
static void process_hop(const int16_t *hop, uint32_t block, uint64_t *frames, uint64_t *invocations, uint64_t *fe_ticks,
                        uint64_t *nn_ticks, uint32_t *head)
{
    memcpy(&ring[ring_pos], hop, HOP * sizeof(int16_t));
    ring_pos = (ring_pos + HOP) % PREROLL;
    uint32_t t0 = board_ticks();
    const int got = kws_frontend_push(&fe, hop, rows[*head], &scratch);
    *fe_ticks += (uint32_t)(board_ticks() - t0);
    if (!got) {
        return;
    }
    *head = (*head + 1u) % WF;
    (*frames)++;
    if (*frames < WF || *frames % STRIDE != 0u) {
        return;
    }
    t0 = board_ticks();
    int8_t *x = (int8_t *)kws_model_input(0);
    for (uint32_t k = 0; k < WF; k++) {
        memcpy(x + k * ROW, rows[(*head + k) % WF], ROW);
    }
    kws_model_invoke();
    const int8_t *y = (const int8_t *)kws_model_output(0);
    const uint8_t score = (uint8_t)(y[KWS_DETECTOR_POSITIVE_CLASS] + 128);
    const int hit = kws_detector_push(&det, score);
    *nn_ticks += (uint32_t)(board_ticks() - t0);
    (*invocations)++;
    if (!hit) {
        return;
    }
    detections++;
    board_wake_line(true);
    // The frozen pre-roll: oldest sample first, ending with this hop.
    memcpy(preroll, &ring[ring_pos], (PREROLL - ring_pos) * sizeof(int16_t));
    memcpy(&preroll[PREROLL - ring_pos], ring, ring_pos * sizeof(int16_t));
    preroll_end = ((uint64_t)block + 1u) * HOP;
    // Dropped blocks count too, so t_ms stays on the stream's clock.
    const uint64_t dropped = block - hops;
    const uint64_t end = (*frames - 1u + dropped) * HOP + KWS_FRONTEND_WINDOW_SAMPLES;
    kws_print("wake " KWS_DETECTOR_LABEL);
    kws_print_u64(" ", kws_detector_sum(&det) / KWS_DETECTOR_WINDOW);
    kws_print_u64(" ", end * 1000u / KWS_FRONTEND_SAMPLE_RATE_HZ);
    kws_print("\n");
    board_wake_line(false);
}

int main(void)
{
    board_init();
    board_wake_line(false);
    if (kws_frontend_init(&fe, &kws_frontend_config) != 0) {
        return kws_print_error("wake", "frontend configuration rejected");
    }
    kws_frontend_set_norm_max(&fe, 32768);
    const kws_detector_params_t params = {KWS_DETECTOR_THRESHOLD, KWS_DETECTOR_WINDOW, KWS_DETECTOR_REFRACTORY};
    if (kws_detector_init(&det, &params) != 0) {
        return kws_print_error("wake", "detector parameters rejected");
    }
    kws_model_init();
    const board_audio_config audio = {KWS_FRONTEND_SAMPLE_RATE_HZ, HOP, on_block, NULL};
    if (board_audio_start(&audio) != 0) {
        return kws_print_error("wake", "the board cannot capture audio at this rate and block size");
    }
    // Time is summed per loop pass in 64 bits: a pass (one hop, or one idle wait) is far shorter than
    // the 32-bit counter's wrap (171 s at 25 MHz), the whole stream need not be.
    uint64_t frames = 0, invocations = 0, fe_ticks = 0, nn_ticks = 0, busy = 0, total = 0;
    uint32_t head = 0;
    uint32_t last = board_ticks();
    for (;;) {
        poll_commands();
        if (fifo_tail != fifo_head) {
            const uint32_t k = fifo_tail % KWS_WAKE_FIFO_HOPS;
            process_hop(fifo[k], fifo_block[k], &frames, &invocations, &fe_ticks, &nn_ticks, &head);
            hops++;
            fifo_tail++;
        } else if (stream_ended) {
            break;
        } else {
            const uint32_t t0 = board_ticks();
            busy += (uint32_t)(t0 - last);
            total += (uint32_t)(t0 - last);
            board_idle();
            last = board_ticks();
            total += (uint32_t)(last - t0);
            continue;
        }
        const uint32_t now = board_ticks();
        busy += (uint32_t)(now - last);
        total += (uint32_t)(now - last);
        last = now;
    }
    board_audio_stop();
    poll_commands();
    if (bad_blocks != 0u) {
        return kws_print_error("wake", "the board delivered blocks of the wrong size");
    }
    kws_print_u64("wake: hops ", hops);
    kws_print_u64(" invocations ", invocations);
    kws_print_u64(" detections ", detections);
    kws_print_u64(" frontend_ticks ", fe_ticks);
    kws_print_u64(" model_ticks ", nn_ticks);
    kws_print_u64(" ticks_hz ", board_ticks_hz());
    kws_print_u64(" busy_ticks ", busy);
    kws_print_u64(" total_ticks ", total);
    kws_print_u64(" overruns ", overruns);
    kws_print("\n");
    while (KWS_WAKE_LINGER && !quit_requested) {
        board_idle();
        poll_commands();
    }
    return 0;
}
