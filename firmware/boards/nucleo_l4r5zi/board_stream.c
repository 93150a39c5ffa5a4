// The UART audio stream parser: see board_stream.h for the framing.

#include "board_stream.h"

int board_stream_start(board_stream *s, const board_audio_config *cfg)
{
    if (cfg == NULL || cfg->on_block == NULL || cfg->block_samples == 0u ||
        cfg->block_samples > BOARD_STREAM_MAX_BLOCK) {
        return -1;
    }
    s->state = BOARD_STREAM_IDLE;
    s->on_block = cfg->on_block;
    s->user = cfg->user;
    s->block_samples = cfg->block_samples;
    s->filled = 0u;
    s->remaining = 0u;
    s->header_bytes = 0u;
    s->count = 0u;
    s->have_low_byte = false;
    s->state = BOARD_STREAM_HEADER;
    return 0;
}

bool board_stream_stop(board_stream *s)
{
    const bool running = s->state != BOARD_STREAM_IDLE;
    s->state = BOARD_STREAM_IDLE;
    return running;
}

static void board_stream_finish(board_stream *s)
{
    if (s->filled > 0u) {
        s->on_block(s->block, s->filled, s->user);
        s->filled = 0u;
    }
    s->state = BOARD_STREAM_IDLE;
    s->on_block(NULL, 0u, s->user);
}

static void board_stream_header(board_stream *s, uint8_t byte)
{
    static const uint8_t magic[4] = {'K', 'W', 'S', 'A'};
    const uint32_t i = s->header_bytes;
    if (i < 4u) {
        // On a mismatch, the byte may itself start the magic ("KKWSA").
        s->header_bytes = byte == magic[i] ? i + 1u : (byte == magic[0] ? 1u : 0u);
        return;
    }
    s->count |= (uint32_t)byte << (8u * (i - 4u));
    s->header_bytes = i + 1u;
    if (s->header_bytes == 8u) {
        s->remaining = s->count;
        s->state = BOARD_STREAM_SAMPLES;
        if (s->remaining == 0u) {
            board_stream_finish(s);
        }
    }
}

void board_stream_byte(board_stream *s, uint8_t byte)
{
    if (s->state == BOARD_STREAM_HEADER) {
        board_stream_header(s, byte);
        return;
    }
    if (s->state != BOARD_STREAM_SAMPLES) {
        return;
    }
    if (!s->have_low_byte) {
        s->low_byte = byte;
        s->have_low_byte = true;
        return;
    }
    s->have_low_byte = false;
    s->block[s->filled++] = (int16_t)(uint16_t)((uint16_t)s->low_byte | ((uint16_t)byte << 8));
    if (s->remaining != BOARD_STREAM_ENDLESS) {
        s->remaining--;
    }
    if (s->filled == s->block_samples) {
        s->on_block(s->block, s->filled, s->user);
        s->filled = 0u;
    }
    if (s->remaining == 0u) {
        board_stream_finish(s);
    }
}
