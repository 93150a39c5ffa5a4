// Wake-word detector: see include/kws/detector.h for the exact rule.
#include "kws/detector.h"

#include <string.h>

int kws_detector_init(kws_detector_t *d, const kws_detector_params_t *params) {
    if (params->window < 1 || params->window > KWS_DETECTOR_MAX_WINDOW) {
        return -1;
    }
    memset(d, 0, sizeof(*d));
    d->params = *params;
    return 0;
}

int kws_detector_push(kws_detector_t *d, uint8_t score) {
    d->sum -= d->ring[d->pos];
    d->ring[d->pos] = score;
    d->sum += score;
    d->pos = (d->pos + 1u == d->params.window) ? 0u : d->pos + 1u;
    if (d->hold > 0u) {
        d->hold--;
        return 0;
    }
    if (d->sum >= (uint32_t)d->params.threshold * d->params.window) {
        d->hold = d->params.refractory;
        return 1;
    }
    return 0;
}

uint32_t kws_detector_sum(const kws_detector_t *d) {
    return d->sum;
}
