// Board port for qemu-system-arm -M mps2-an386 (Arm MPS2 + AN386: Cortex-M4F at 25 MHz).
//
//   UART        CMSDK APB UART0 at 0x40004000 (QEMU serial0); RX interrupt = IRQ 0 (wakes board_idle)
//   ticks       CMSDK APB Timer0 at 0x40000000, 25 MHz, a free-running down-counter, inverted here
//   wake line   FPGAIO LED0 (bit 0 of 0x40028000), active high
//   exit        ARM semihosting SYS_EXIT_EXTENDED: needs -semihosting-config enable=on
//   audio       wake_audio.raw (int16 little-endian mono PCM) in QEMU's working directory, read through
//               semihosting one block per CMSDK Timer1 interrupt (IRQ 9) at the block rate in virtual
//               time, i.e. in real time as the guest sees it: a guest that is too slow overruns
//
// Timing: run QEMU with -icount shift=N. Timer0 then advances exactly 2^N / 40 ticks per guest
// instruction (one instruction = 2^N ns of virtual time, one tick = 40 ns), independent of host speed.

#include "kws/board.h"
#include "kws/print.h"
#include "kws/semihost.h"

typedef struct {
    volatile uint32_t data;       // write: transmit a byte; read: the received byte (clears RXFULL)
    volatile uint32_t state;      // bit 0 TX buffer full, bit 1 RX buffer full
    volatile uint32_t ctrl;       // bit 0 TX enable, 1 RX enable, 2 TX irq enable, 3 RX irq enable
    volatile uint32_t intstatus;  // bit 0 TX, bit 1 RX; write 1 to clear
    volatile uint32_t bauddiv;    // PCLK / baud, >= 16
} board_cmsdk_uart;

typedef struct {
    volatile uint32_t ctrl;       // bit 0 enable, bit 3 interrupt enable
    volatile uint32_t value;      // current count (counts down at PCLK)
    volatile uint32_t reload;     // loaded into value after it reaches 0 (writing it also sets value)
    volatile uint32_t intstatus;  // bit 0: reached 0; write 1 to clear
} board_cmsdk_timer;

#define BOARD_UART0 ((board_cmsdk_uart *)0x40004000u)
#define BOARD_TIMER0 ((board_cmsdk_timer *)0x40000000u)
#define BOARD_TIMER1 ((board_cmsdk_timer *)0x40001000u)
#define BOARD_FPGAIO_LED (*(volatile uint32_t *)0x40028000u)
#define BOARD_NVIC_ISER0 (*(volatile uint32_t *)0xE000E100u)

#define BOARD_PCLK_HZ 25000000u

#define BOARD_UART_TXFULL 0x1u
#define BOARD_UART_RXFULL 0x2u
#define BOARD_UART_TX_EN 0x1u
#define BOARD_UART_RX_EN 0x2u
#define BOARD_UART_RX_INTEN 0x8u
#define BOARD_UART_INT_RX 0x2u
#define BOARD_UART0_RX_IRQ 0u
#define BOARD_TIMER1_IRQ 9u
#define BOARD_NVIC_ICER0 (*(volatile uint32_t *)0xE000E180u)
#define BOARD_AUDIO_FILE "wake_audio.raw"
#define BOARD_AUDIO_MAX_BLOCK 1024u

// Set by every interrupt handler of this board; board_idle() consumes it (see board.h for why).
static volatile uint32_t board_interrupt_seen;

void startup_irq0_handler(void);
void startup_irq9_handler(void);

void board_init(void)
{
    BOARD_UART0->ctrl = 0u;
    BOARD_UART0->bauddiv = BOARD_PCLK_HZ / KWS_UART_BAUD;
    BOARD_UART0->intstatus = 0xFu;
    BOARD_UART0->ctrl = BOARD_UART_TX_EN | BOARD_UART_RX_EN | BOARD_UART_RX_INTEN;
    BOARD_NVIC_ISER0 = 1u << BOARD_UART0_RX_IRQ;

    BOARD_TIMER0->ctrl = 0u;
    BOARD_TIMER0->reload = 0xFFFFFFFFu;
    BOARD_TIMER0->value = 0xFFFFFFFFu;
    BOARD_TIMER0->intstatus = 1u;
    BOARD_TIMER0->ctrl = 1u;

    BOARD_FPGAIO_LED &= ~1u;
}

// The byte stays in the UART's data register until board_uart_read(); QEMU holds further input back
// meanwhile, so nothing is lost. The handler only acknowledges the interrupt to wake board_idle().
void startup_irq0_handler(void)
{
    BOARD_UART0->intstatus = BOARD_UART_INT_RX;
    board_interrupt_seen = 1u;
}

// --- audio: one block of the file per Timer1 period ------------------------------------------------
static board_audio_config board_audio;
static int32_t board_audio_file = -1;
static int16_t board_audio_block[BOARD_AUDIO_MAX_BLOCK];

static void board_audio_close(void)
{
    BOARD_TIMER1->ctrl = 0u;
    BOARD_NVIC_ICER0 = 1u << BOARD_TIMER1_IRQ;
    if (board_audio_file >= 0) {
        (void)kws_semihost_close(board_audio_file);
        board_audio_file = -1;
    }
}

int board_audio_start(const board_audio_config *cfg)
{
    if (cfg == NULL || cfg->on_block == NULL || cfg->sample_rate_hz == 0u || cfg->block_samples == 0u ||
        cfg->block_samples > BOARD_AUDIO_MAX_BLOCK) {
        return -1;
    }
    const uint64_t period = (uint64_t)BOARD_PCLK_HZ * cfg->block_samples / cfg->sample_rate_hz;
    if (period == 0u || period > 0xFFFFFFFFu) {
        return -1;
    }
    board_audio_close();
    board_audio_file = kws_semihost_open(BOARD_AUDIO_FILE, KWS_SEMIHOST_READ);
    if (board_audio_file < 0) {
        return -1;
    }
    board_audio = *cfg;
    BOARD_TIMER1->reload = (uint32_t)period - 1u;
    BOARD_TIMER1->intstatus = 1u;
    BOARD_TIMER1->ctrl = 0x9u;  // enable + interrupt
    BOARD_NVIC_ISER0 = 1u << BOARD_TIMER1_IRQ;
    return 0;
}

void board_audio_stop(void) { board_audio_close(); }

// A block is due: read it from the file and hand it over; at the end of the file (or a short read)
// make the final call with 0 samples and stop.
void startup_irq9_handler(void)
{
    BOARD_TIMER1->intstatus = 1u;
    board_interrupt_seen = 1u;
    if (board_audio_file < 0) {
        return;
    }
    const size_t bytes = board_audio.block_samples * sizeof(int16_t);
    if (kws_semihost_read(board_audio_file, board_audio_block, bytes) == (int32_t)bytes) {
        board_audio.on_block(board_audio_block, board_audio.block_samples, board_audio.user);
    } else {
        board_audio_close();
        board_audio.on_block(NULL, 0u, board_audio.user);
    }
}

uint32_t board_ticks(void) { return ~BOARD_TIMER0->value; }

uint32_t board_ticks_hz(void) { return BOARD_PCLK_HZ; }

size_t board_uart_write(const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        while (BOARD_UART0->state & BOARD_UART_TXFULL) {
        }
        BOARD_UART0->data = data[i];
    }
    return len;
}

size_t board_uart_read(uint8_t *buf, size_t cap)
{
    size_t n = 0;
    while (n < cap && (BOARD_UART0->state & BOARD_UART_RXFULL)) {
        buf[n++] = (uint8_t)BOARD_UART0->data;
    }
    return n;
}

void board_wake_line(bool asserted)
{
    if (asserted) {
        BOARD_FPGAIO_LED |= 1u;
    } else {
        BOARD_FPGAIO_LED &= ~1u;
    }
}

// Idle by polling the interrupt flag, not WFI. QEMU 7.2 with `-icount sleep=off` moves virtual time
// on by twice the next deadline when the guest sleeps in WFI (measured with the 20 ms audio timer:
// blocks arrived every 40 ms of Timer0 time when idling in WFI, every 20.000 ms when polling), which
// would halve the audio rate the app sees. Polling keeps virtual time exact; the time spent here is
// still measurable as idle. Build with -DBOARD_QEMU_WFI=1 for the WFI path that hardware ports use:
// with interrupts masked, WFI still wakes on a pending interrupt, so one arriving between the flag
// test and the WFI cannot be lost; it is taken right after `cpsie i`.
void board_idle(void)
{
#if BOARD_QEMU_WFI
    __asm__ volatile("cpsid i" ::: "memory");
    if (!board_interrupt_seen) {
        __asm__ volatile("dsb\n\twfi" ::: "memory");
    }
    board_interrupt_seen = 0u;
    __asm__ volatile("cpsie i\n\tisb" ::: "memory");
#else
    while (!board_interrupt_seen) {
    }
    board_interrupt_seen = 0u;
#endif
}

void board_exit(int status)
{
    while (BOARD_UART0->state & BOARD_UART_TXFULL) {
    }
    kws_semihost_exit(status);
}

// An exception without a handler (boards/common/cortex_m_startup.c): say which on the UART and end
// the simulation with status 128 + exception number (HardFault: 131).
void startup_unhandled(uint32_t exception);
void startup_unhandled(uint32_t exception)
{
    kws_print_u64("kws: unhandled exception ", exception);
    kws_print("\n");
    board_exit(128 + (int)exception);
}
