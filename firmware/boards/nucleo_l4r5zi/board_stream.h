// Audio streamed by a host over a UART, parsed byte by byte (nucleo_l4r5zi's board_audio_start()).
//
// Framing, host -> board, after the board asked for audio:
//   "KWSA"            4 bytes; anything before them is skipped (so stray bytes cannot shift samples)
//   N                 uint32 little-endian: samples that follow (0xFFFFFFFF: endless)
//   N samples         int16 little-endian, mono, at the rate the board asked for
// The parser collects samples into blocks of cfg->block_samples and calls cfg->on_block for each full
// block; after N samples it delivers the partial last block (if any) and then the end call
// (on_block(NULL, 0, user)), and becomes idle. No hardware access: the UART's RX interrupt feeds it,
// and tests build it on the host.
#ifndef KWS_BOARDS_NUCLEO_L4R5ZI_BOARD_STREAM_H
#define KWS_BOARDS_NUCLEO_L4R5ZI_BOARD_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kws/board.h"

#ifndef BOARD_STREAM_MAX_BLOCK
#define BOARD_STREAM_MAX_BLOCK 1024u  // the largest cfg->block_samples accepted
#endif
#define BOARD_STREAM_ENDLESS 0xFFFFFFFFu

typedef enum { BOARD_STREAM_IDLE = 0, BOARD_STREAM_HEADER, BOARD_STREAM_SAMPLES } board_stream_state;

typedef struct {
    volatile board_stream_state state;
    board_audio_fn on_block;
    void *user;
    size_t block_samples;
    size_t filled;          // samples in block
    uint32_t remaining;     // samples still expected (BOARD_STREAM_ENDLESS: no end)
    uint32_t header_bytes;  // header bytes read so far (0..8)
    uint32_t count;         // the sample count being read from the header
    uint8_t low_byte;
    bool have_low_byte;
    int16_t block[BOARD_STREAM_MAX_BLOCK];
} board_stream;

// Arms the parser for cfg (read during the call only): it then waits for the header. Returns 0, or -1
// (and stays idle) when cfg is NULL, has no on_block, or its block_samples is 0 or above the maximum.
// The sample rate is the caller's to check.
int board_stream_start(board_stream *s, const board_audio_config *cfg);

// Feeds one received byte; may call on_block (full block, partial last block, end call).
// Does nothing when the parser is idle.
void board_stream_byte(board_stream *s, uint8_t byte);

// Makes the parser idle without calling on_block. Returns whether it was running.
bool board_stream_stop(board_stream *s);

#endif  // KWS_BOARDS_NUCLEO_L4R5ZI_BOARD_STREAM_H
