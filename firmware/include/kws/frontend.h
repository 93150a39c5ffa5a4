// The kws MFCC / log-mel frontend: integer only, no heap, one implementation for device and host.
//
// The Python toolchain loads this same code as a host shared library for every feature it computes
// (DESIGN.md decision 1), so training and device features are identical by construction.
//
// Pipeline per frame (all integer): block-floating-point scaling -> periodic Hann window (Q15) ->
// real FFT (fft_size points, frame zero-padded) -> |X[k]| -> mel filterbank (Q15 weights) ->
// ln(mel / norm_max + log_floor) in Q24 -> DCT-II (or the log-mel bands) scaled by 1/out_scale ->
// + out_zero_point -> int8 with the preset's rounding and overflow rule.
//
// Tables and sizes come from a preset: toolchain/kws/config.py is the source of truth and
// kws.features.tables generates them (as C for firmware, at run time for the host library).
#ifndef KWS_FRONTEND_H
#define KWS_FRONTEND_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Upper bounds for statically sized state. A firmware build's generated header defines the exact
// values of its preset before including this file; the host library uses these defaults.
#ifndef KWS_FRONTEND_MAX_FFT
#define KWS_FRONTEND_MAX_FFT 512
#endif
#ifndef KWS_FRONTEND_MAX_MEL
#define KWS_FRONTEND_MAX_MEL 64
#endif
#ifndef KWS_FRONTEND_MAX_HISTORY
#define KWS_FRONTEND_MAX_HISTORY 1024  // hop_samples * ceil(window_samples / hop_samples)
#endif

enum kws_frontend_normalize {
    KWS_FRONTEND_NORM_FIXED = 0,     // samples are int16 / 32768
    KWS_FRONTEND_NORM_CLIP_MAX = 1,  // samples are divided by norm_max (the clip's maximum sample)
};

enum kws_frontend_rounding {
    KWS_FRONTEND_ROUND_TRUNC = 0,    // toward zero (numpy's float -> int cast)
    KWS_FRONTEND_ROUND_NEAREST = 1,  // half away from zero
};

enum kws_frontend_overflow {
    KWS_FRONTEND_SATURATE = 0,
    KWS_FRONTEND_WRAP = 1,           // modulo 256, as numpy's float -> int8 cast does on x86
};

// Read-only configuration: a preset's sizes and tables. Owned by the caller (usually a const in
// flash); must outlive every state initialized with it.
typedef struct {
    int32_t window_samples;          // frame length, <= fft_size
    int32_t hop_samples;             // frame step
    int32_t fft_size;                // 32, 128 or 512 (fft_size / 2 a power of 4), <= KWS_FRONTEND_MAX_FFT
    int32_t num_mel;                 // mel bands
    int32_t num_coeffs;              // DCT coefficients output; 0 = output the num_mel log-mel bands
    int32_t normalize;               // enum kws_frontend_normalize
    int32_t rounding;                // enum kws_frontend_rounding
    int32_t overflow;                // enum kws_frontend_overflow
    int32_t clip_samples;            // whole-clip interface: clips are cut/zero-padded to this (0: as given)
    uint64_t log_floor_q52;          // log_floor * 2^52, rounded (log_floor < 2^-12)
    int32_t out_zero_point;          // added before rounding
    int32_t bin_lo, bin_hi;          // FFT bins the mel bands use (only these magnitudes are computed)
    const int16_t *window;           // [window_samples] periodic Hann, Q15
    const int32_t *twiddle;          // [fft_size / 2] W^k = exp(-2 pi i k / fft_size) for the split step:
                                     // cos (Q15) in the low half-word, -sin (Q15) in the high half-word
    const int32_t *fft_twiddle;      // the half-size FFT's radix-4 stages of span L = 16, 64, .. fft_size / 2,
                                     // one after the other: for j = 1 .. L/4 - 1, W^(j s), W^(2 j s), W^(3 j s)
                                     // (s = fft_size / L), packed as `twiddle`; 3 * sum(L/4 - 1) entries
    const uint8_t *digitrev;         // [fft_size / 2] base-4 digit reversal of the half-size FFT
    const uint16_t *mel_seg_start;   // [num_mel + 2] the mel filterbank as segments of FFT bins: the bins
                                     // [start[u], start[u+1]) weigh into bands u - 1 and u; start[0] = bin_lo,
                                     // start[num_mel + 1] = bin_hi + 1
    const uint32_t *mel_pair_weights;  // [bin_hi - bin_lo + 1] per bin its weight in band u - 1 (low half-word)
                                     // and in band u (high half-word), Q15 (32768 = 1.0); 0 for bands -1, num_mel
    const int32_t *out_matrix;       // [num_coeffs][num_mel] DCT-II divided by out_scale, Q24 (unused, may be
                                     // NULL, when num_coeffs = 0)
    int32_t out_gain_q24;            // 1 / out_scale, Q24: the log-mel output (num_coeffs = 0) is
                                     // out_gain * ln(mel), i.e. the identity matrix divided by out_scale
    const int32_t *log2_table;       // [257] log2(1 + i / 256), Q24 (increasing)
} kws_frontend_config_t;

// Streaming state: the sample history and the normalization. Owned by the caller, no pointers
// into caller buffers other than `cfg`.
typedef struct {
    const kws_frontend_config_t *cfg;
    int16_t history[KWS_FRONTEND_MAX_HISTORY];  // the newest history_samples samples, oldest first
    int32_t history_samples;                    // hop_samples * ceil(window_samples / hop_samples)
    int32_t samples_seen;                       // saturates at history_samples
    int32_t log2_norm_q24;                      // log2 of the normalization divisor, Q24
    int32_t norm_max;                           // the divisor in sample units (32768 for FIXED)
    uint32_t hop_peak;                          // a value with the leading bit of max |sample| of the newest
                                                // hop (window <= 2 hops)
} kws_frontend_t;

// Working memory of one frame, reused from frame to frame (may be shared with other stages
// between calls). Size: 4 * (KWS_FRONTEND_MAX_FFT + KWS_FRONTEND_MAX_FFT / 2 + 1) bytes.
typedef struct {
    int32_t fft[KWS_FRONTEND_MAX_FFT];           // interleaved complex half-size FFT
    uint32_t mag[KWS_FRONTEND_MAX_FFT / 2 + 1];  // |X[k]|, k = 0..fft_size/2
} kws_frontend_scratch_t;

// Initializes `fe` for `cfg`. Returns 0, or -1 if cfg's sizes exceed the compile-time bounds or
// are inconsistent. With KWS_FRONTEND_NORM_CLIP_MAX the divisor starts at 32768 (full scale):
// call kws_frontend_set_norm_max before pushing a clip's samples.
int kws_frontend_init(kws_frontend_t *fe, const kws_frontend_config_t *cfg);

// Forgets the sample history (the next row comes after a full window of new samples).
void kws_frontend_reset(kws_frontend_t *fe);

// Sets the normalization divisor in sample units (KWS_FRONTEND_NORM_CLIP_MAX only): the waveform
// is treated as pcm / max_sample. max_sample <= 0 is replaced by 1.
void kws_frontend_set_norm_max(kws_frontend_t *fe, int32_t max_sample);

// The divisor MLPerf Tiny's pipeline uses for a clip: its largest sample value. If no sample is
// positive, the largest magnitude (dividing by a negative maximum only flips the sign, which
// |FFT| ignores); 1 for an all-zero clip (every band then sits at log_floor, no division by zero).
int32_t kws_frontend_clip_max(const int16_t *pcm, int32_t n);

// Pushes one hop (hop_samples int16 samples, read only) and, once a full frame is available,
// writes one feature row of num_coeffs (or num_mel) int8 values to `row`. Returns 1 if a row was
// written, 0 otherwise. Frame i covers samples [i * hop, i * hop + window) of the stream.
int kws_frontend_push(kws_frontend_t *fe, const int16_t *hop, int8_t *row, kws_frontend_scratch_t *scratch);

// Whole-clip interface: features of `pcm` [n] as rows [max_rows][row_size] int8 in `out`.
// Cuts/zero-pads to cfg->clip_samples if set; with NORM_CLIP_MAX normalizes by
// kws_frontend_clip_max of the (cut) clip. Uses `fe` as working state (re-initialized).
// Returns the number of rows written (<= max_rows), or -1 on a bad configuration.
int32_t kws_frontend_clip(kws_frontend_t *fe, const kws_frontend_config_t *cfg, const int16_t *pcm, int32_t n,
                          int8_t *out, int32_t max_rows, kws_frontend_scratch_t *scratch);

// The windowed real-FFT magnitude used by the frontend (firmware/src/frontend_fft.c): reads
// frame[0 .. window_samples) (int16), writes scratch->mag[k] = |X[k]| of
// (frame * window_q15 * 2^s) / (fft_size / 2) for k in [cfg->bin_lo, cfg->bin_hi], and returns
// the block-scaling exponent s. The source states the exact integer definition, which every
// build reproduces bit for bit.
int32_t kws_frontend_spectrum(const kws_frontend_config_t *cfg, const int16_t *frame, kws_frontend_scratch_t *scratch);

// The same with the frame's largest |sample| given (kws_frontend_peak of frame[0 .. window_samples)),
// for callers that know it already (kws_frontend_push keeps the peaks of the hops it has seen).
int32_t kws_frontend_spectrum_peak(const kws_frontend_config_t *cfg, const int16_t *frame, uint32_t peak,
                                   kws_frontend_scratch_t *scratch);

// max |x[i]| over x[0 .. n) (0 for n <= 0; 32768 for a sample of -32768).
uint32_t kws_frontend_peak(const int16_t *x, int32_t n);

// Copies src[0 .. n) to dst (not overlapping) and returns the OR of |src[i]| (|-32768| = 32768): 0 for
// silence, else a value with the leading bit of max |src[i]|, which is all the block scaling of
// kws_frontend_spectrum_peak reads from a peak. For kws_frontend_push.
uint32_t kws_frontend_copy_peak_bits(int16_t *dst, const int16_t *src, int32_t n);

#ifdef __cplusplus
}
#endif

#endif  // KWS_FRONTEND_H
