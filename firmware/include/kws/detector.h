// The wake-word detector: integer smoothing, threshold and refractory period over the model's
// scores. No heap, no float. kws.evaluate.detector is its Python twin (a test runs both on the same
// streams and compares every decision), so `kws eval` measures exactly what the device decides.
//
// Per model invocation: push score (uint8, the int8 wake-word output + 128) into a ring of the last
// `window` scores (zero at start); sum = the ring's sum; if a refractory countdown is running, count
// it down and do not detect; else detect when sum >= threshold * window and start a countdown of
// `refractory` invocations. The ring is not reset by a detection.
//
// Parameters come from the model's thresholds.json as generated constants (kws.evaluate.detector
// .write_c_header), never typed by hand.
#ifndef KWS_DETECTOR_H
#define KWS_DETECTOR_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef KWS_DETECTOR_MAX_WINDOW
#define KWS_DETECTOR_MAX_WINDOW 64
#endif

typedef struct {
    uint8_t threshold;       // in: 0..255, compared with the mean of the window
    uint8_t window;          // in: 1..KWS_DETECTOR_MAX_WINDOW invocations
    uint32_t refractory;     // in: invocations without detection after one
} kws_detector_params_t;

typedef struct {
    kws_detector_params_t params;
    uint8_t ring[KWS_DETECTOR_MAX_WINDOW];
    uint32_t pos;
    uint32_t sum;
    uint32_t hold;
} kws_detector_t;

// Initialise (or reset) a detector. Returns 0, or -1 when params are out of range (d untouched).
int kws_detector_init(kws_detector_t *d, const kws_detector_params_t *params);

// One model invocation's score in; 1 when this invocation is a detection, else 0.
int kws_detector_push(kws_detector_t *d, uint8_t score);

// The current smoothed sum (for reporting the score of a detection: sum / window).
uint32_t kws_detector_sum(const kws_detector_t *d);

#ifdef __cplusplus
}
#endif

#endif  // KWS_DETECTOR_H
