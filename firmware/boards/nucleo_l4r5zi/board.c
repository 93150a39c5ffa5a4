// Board port for NUCLEO-L4R5ZI (STM32L4R5ZI: Cortex-M4F, 2 MiB flash, 640 KiB SRAM), bare metal.
// Registers are written from the reference manual RM0432 (STM32L4+ Series) and the board's user manual
// UM2179 (STM32 Nucleo-144 boards with STM32L4+); no vendor header is used.
//
//   clock       MSI 4 MHz (reset default) -> PLL (M=1, N=60, R=2) = 120 MHz SYSCLK = HCLK = PCLK1/2;
//               voltage range 1 boost mode, flash 5 wait states (RM0432 chapters 3, 5 and 6)
//   UART        LPUART1 on PG7 (TX) / PG8 (RX), AF8: the ST-LINK virtual COM port (UM2179, "Virtual
//               COM port"); 8N1 at KWS_UART_BAUD; PG2..PG15 are powered by VDDIO2, made valid
//               with PWR_CR2.IOSV. RX by interrupt (IRQ 70) into a 1 KiB ring; bytes that do not fit
//               are dropped and counted (board_uart_rx_dropped()).
//   ticks       DWT CYCCNT: the core's cycle counter, 120 MHz (wraps every 35.8 s)
//   wake line   Arduino D8 = PF12 (UM2179, "ARDUINO connectors" table), push-pull, active high;
//               LD1 (green, PC7) mirrors it
//   timestamp   Arduino D7 = PF13 (UM2179, "ARDUINO connectors" table: D7 = PF13): push-pull, high at
//               rest; board_timestamp_pulse() drives it low >= 1 us. (MLPerf Tiny energy mode: connect
//               it to the IO manager's timestamp input.)
//   LEDs        LD1 green PC7 = wake line, LD2 blue PB7 = audio streaming, LD3 red PB14 = fault
//   audio       16 kHz mono int16 streamed by the host over the LPUART (below); no microphone driver yet
//   exit        flushes the UART, reports the status through semihosting when built with it, then sleeps
//
// Audio over the UART (board_audio_start): the board sends the line
//     kws-audio-start 16000 s16le\n
// and the host answers with an 8-byte header, "KWSA" then the sample count N as uint32 little-endian
// (0xFFFFFFFF = endless), then N samples, each int16 little-endian, 16 kHz mono. Bytes before "KWSA" are
// skipped. The RX interrupt feeds board_stream.c, which assembles blocks of cfg->block_samples and
// calls cfg->on_block (from interrupt context); after N samples it delivers the partial last block
// (if any), then the end call (block_samples == 0). board_audio_stop() sends "kws-audio-stop\n" if
// the stream is still running: the host must stop sending then. While audio runs, received bytes go
// to audio, not to board_uart_read(). Real time needs 32 000 B/s = 320 000 baud of 8N1 on the wire: build with
// -DKWS_UART_BAUD=921600 (2.9x headroom; 460800 gives 1.4x). At lower rates the stream simply runs
// slower than real time (fine for evaluating a file). Baud rates above 115200 depend on the ST-LINK
// firmware's virtual COM port: untested here.
//
// PDM microphone (not implemented, untested on hardware): an MP34DT01-class microphone on DFSDM1
// (CKOUT as the 1-3 MHz PDM clock, DATIN as data, sinc3 filter, DMA into a double buffer) would replace
// the UART stream behind the same board_audio_start(); nothing in this file drives DFSDM yet.
//
// Untested on hardware: everything here compiles and links (tests/test_boards.py) but has not run on a
// board in this repository's CI, which has none.

#include "kws/board.h"
#include "kws/print.h"
#include "board_stream.h"
#if KWS_HAVE_SEMIHOST
#include "kws/semihost.h"
#endif

#define BOARD_REG(addr) (*(volatile uint32_t *)(addr))

// --- RCC (RM0432 6.4, base 0x40021000) -----------------------------------------------------------
#define RCC_BASE 0x40021000u
#define RCC_CR BOARD_REG(RCC_BASE + 0x00u)
#define RCC_CFGR BOARD_REG(RCC_BASE + 0x08u)
#define RCC_PLLCFGR BOARD_REG(RCC_BASE + 0x0Cu)
#define RCC_AHB2ENR BOARD_REG(RCC_BASE + 0x4Cu)
#define RCC_APB1ENR1 BOARD_REG(RCC_BASE + 0x58u)
#define RCC_APB1ENR2 BOARD_REG(RCC_BASE + 0x5Cu)
#define RCC_CCIPR BOARD_REG(RCC_BASE + 0x88u)

#define RCC_CR_MSIRDY (1u << 1)
#define RCC_CR_MSIRGSEL (1u << 3)  // the MSI range comes from MSIRANGE (not MSISRANGE in RCC_CSR)
#define RCC_CR_MSIRANGE_MASK (0xFu << 4)
#define RCC_CR_MSIRANGE_4MHZ (6u << 4)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_CFGR_SW_MASK (3u << 0)
#define RCC_CFGR_SW_PLL (3u << 0)
#define RCC_CFGR_SWS_MASK (3u << 2)
#define RCC_CFGR_SWS_PLL (3u << 2)
#define RCC_CFGR_SWS_MSI (0u << 2)
#define RCC_CFGR_HPRE_MASK (0xFu << 4)
#define RCC_CFGR_HPRE_DIV2 (0x8u << 4)
#define RCC_CFGR_PPRE_MASK ((7u << 8) | (7u << 11))  // PPRE1, PPRE2: 0 = not divided
#define RCC_PLLCFGR_SRC_MSI (1u << 0)
#define RCC_PLLCFGR_M(m) (((m) - 1u) << 4)  // PLLM[7:4]: divide by m (1..16)
#define RCC_PLLCFGR_N(n) ((n) << 8)         // PLLN[14:8]: multiply by n (8..127)
#define RCC_PLLCFGR_REN (1u << 24)          // PLLR output enable; PLLR[26:25] = 0: divide by 2
#define RCC_AHB2ENR_GPIOB (1u << 1)
#define RCC_AHB2ENR_GPIOC (1u << 2)
#define RCC_AHB2ENR_GPIOF (1u << 5)
#define RCC_AHB2ENR_GPIOG (1u << 6)
#define RCC_APB1ENR1_PWR (1u << 28)
#define RCC_APB1ENR2_LPUART1 (1u << 0)
#define RCC_CCIPR_LPUART1SEL_MASK (3u << 10)  // 0 = PCLK1

// --- PWR (RM0432 5.4, base 0x40007000) -----------------------------------------------------------
#define PWR_BASE 0x40007000u
#define PWR_CR1 BOARD_REG(PWR_BASE + 0x00u)
#define PWR_CR2 BOARD_REG(PWR_BASE + 0x04u)
#define PWR_SR2 BOARD_REG(PWR_BASE + 0x14u)
#define PWR_CR5 BOARD_REG(PWR_BASE + 0x80u)
#define PWR_CR1_VOS_MASK (3u << 9)
#define PWR_CR1_VOS_RANGE1 (1u << 9)
#define PWR_CR2_IOSV (1u << 9)
#define PWR_SR2_VOSF (1u << 10)
#define PWR_CR5_R1MODE (1u << 8)  // 1 = range 1 normal (<= 80 MHz), 0 = range 1 boost (<= 120 MHz)

// --- FLASH (RM0432 3.7, base 0x40022000) ---------------------------------------------------------
#define FLASH_ACR BOARD_REG(0x40022000u)
#define FLASH_ACR_LATENCY_MASK 0xFu
#define FLASH_ACR_PRFTEN (1u << 8)
#define FLASH_ACR_ICEN (1u << 9)
#define FLASH_ACR_DCEN (1u << 10)
// Range 1 boost mode: one wait state per 20 MHz of HCLK above the first 20 (RM0432 3.3.3 "Read access
// latency": 5 wait states up to 120 MHz).
#define BOARD_FLASH_WAIT_STATES 5u

// --- GPIO (RM0432 8.5, port x at 0x48000000 + 0x400 * x) -----------------------------------------
typedef struct {
    volatile uint32_t moder;    // 2 bits per pin: 00 input, 01 output, 10 alternate function, 11 analog
    volatile uint32_t otyper;   // 1 bit per pin: 0 push-pull
    volatile uint32_t ospeedr;  // 2 bits per pin
    volatile uint32_t pupdr;    // 2 bits per pin: 00 none, 01 pull-up, 10 pull-down
    volatile uint32_t idr;
    volatile uint32_t odr;
    volatile uint32_t bsrr;     // write 1 << pin: set; 1 << (pin + 16): reset
    volatile uint32_t lckr;
    volatile uint32_t afr[2];   // 4 bits per pin: AFRL pins 0..7, AFRH pins 8..15
} board_gpio;

#define GPIOB ((board_gpio *)0x48000400u)
#define GPIOC ((board_gpio *)0x48000800u)
#define GPIOF ((board_gpio *)0x48001400u)
#define GPIOG ((board_gpio *)0x48001800u)

// --- LPUART1 (RM0432 LPUART chapter, registers; base 0x40008000) ---------------------------------
typedef struct {
    volatile uint32_t cr1;    // 0x00
    volatile uint32_t cr2;    // 0x04
    volatile uint32_t cr3;    // 0x08
    volatile uint32_t brr;    // 0x0C: 256 * f_ck / baud, 20 bits, >= 0x300
    uint32_t reserved0[2];    // 0x10, 0x14
    volatile uint32_t rqr;    // 0x18
    volatile uint32_t isr;    // 0x1C
    volatile uint32_t icr;    // 0x20
    volatile uint32_t rdr;    // 0x24
    volatile uint32_t tdr;    // 0x28
    volatile uint32_t presc;  // 0x2C: kernel clock prescaler code 0..11
} board_lpuart;

#define LPUART1 ((board_lpuart *)0x40008000u)
#define LPUART_CR1_UE (1u << 0)
#define LPUART_CR1_RE (1u << 2)
#define LPUART_CR1_TE (1u << 3)
#define LPUART_CR1_RXNEIE (1u << 5)  // also enables the overrun interrupt
#define LPUART_ISR_FE (1u << 1)
#define LPUART_ISR_NE (1u << 2)
#define LPUART_ISR_ORE (1u << 3)
#define LPUART_ISR_RXNE (1u << 5)
#define LPUART_ISR_TC (1u << 6)
#define LPUART_ISR_TXE (1u << 7)
#define LPUART_ICR_ERRORS (LPUART_ISR_FE | LPUART_ISR_NE | LPUART_ISR_ORE)  // FECF, NECF, ORECF
#define LPUART1_IRQ 70u

// --- Cortex-M4 system registers (ARMv7-M Architecture Reference Manual, B3) ----------------------
#define SCB_HFSR BOARD_REG(0xE000ED2Cu)
#define SCB_HFSR_DEBUGEVT (1u << 31)
#define DHCSR BOARD_REG(0xE000EDF0u)
#define DHCSR_C_DEBUGEN (1u << 0)
#define DEMCR BOARD_REG(0xE000EDFCu)
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL BOARD_REG(0xE0001000u)
#define DWT_CTRL_CYCCNTENA (1u << 0)
#define DWT_CYCCNT BOARD_REG(0xE0001004u)
#define NVIC_ISER(n) BOARD_REG(0xE000E100u + 4u * (n))

#define BOARD_SYSCLK_HZ 120000000u
#define BOARD_PCLK1_HZ BOARD_SYSCLK_HZ

// --- pins -----------------------------------------------------------------------------------------
#define PIN_LPUART_TX 7u   // PG7
#define PIN_LPUART_RX 8u   // PG8
#define PIN_LD1_GREEN 7u   // PC7
#define PIN_LD2_BLUE 7u    // PB7
#define PIN_LD3_RED 14u    // PB14
#define PIN_WAKE 12u       // PF12 = Arduino D8
#define PIN_TIMESTAMP 13u  // PF13 = Arduino D7
#define AF_LPUART1 8u

// --- interrupts ----------------------------------------------------------------------------------
// The shared startup (boards/common/cortex_m_startup.c) builds the vector table for 96 external
// interrupts (STARTUP_NUM_IRQS in board.mk; the part has 95); a handler is installed by its name.
#define LPUART1_IRQ_HANDLER startup_irq70_handler  // LPUART1 global interrupt: position 70 (RM0432)

void LPUART1_IRQ_HANDLER(void);
void startup_hardfault_handler(void);
void startup_unhandled(uint32_t exception);
void board_hardfault_report(uint32_t *frame);
uint32_t board_uart_rx_dropped(void);

// --- state -----------------------------------------------------------------------------------------
#define BOARD_RX_RING_BYTES 1024u  // a power of two
#define BOARD_AUDIO_RATE_HZ 16000u

static volatile uint32_t board_interrupt_seen;  // set by this board's handlers; board_idle() consumes it
static volatile bool board_ready;                // the UART is usable (board_init() ran)
static uint8_t board_rx_ring[BOARD_RX_RING_BYTES];
static volatile uint32_t board_rx_head;  // written by the RX interrupt only
static volatile uint32_t board_rx_tail;  // written by board_uart_read() only
static volatile uint32_t board_rx_dropped;

static board_stream board_audio;  // fed by the RX interrupt while audio runs

static void board_irq_disable(void) { __asm__ volatile("cpsid i" ::: "memory"); }
static void board_irq_enable(void) { __asm__ volatile("cpsie i\n\tisb" ::: "memory"); }

static void board_pin_output(board_gpio *port, uint32_t pin, bool high)
{
    port->bsrr = high ? (1u << pin) : (1u << (pin + 16u));
    port->otyper &= ~(1u << pin);
    port->moder = (port->moder & ~(3u << (2u * pin))) | (1u << (2u * pin));
}

static void board_pin_alternate(board_gpio *port, uint32_t pin, uint32_t af, uint32_t pull)
{
    port->afr[pin / 8u] = (port->afr[pin / 8u] & ~(0xFu << (4u * (pin % 8u)))) | (af << (4u * (pin % 8u)));
    port->ospeedr = (port->ospeedr & ~(3u << (2u * pin))) | (2u << (2u * pin));  // high speed
    port->pupdr = (port->pupdr & ~(3u << (2u * pin))) | (pull << (2u * pin));
    port->otyper &= ~(1u << pin);
    port->moder = (port->moder & ~(3u << (2u * pin))) | (2u << (2u * pin));
}

static void board_delay_cycles(uint32_t cycles)
{
    const uint32_t t0 = DWT_CYCCNT;
    while ((uint32_t)(DWT_CYCCNT - t0) < cycles) {
    }
}

// RM0432 chapter 5 "Dynamic voltage scaling management" (range 1 normal -> boost) and chapter 6
// (RCC_CFGR HPRE: switching to a SYSCLK above 80 MHz needs HCLK divided by 2 first): halve HCLK, select
// boost mode, raise the flash latency, switch to the PLL, wait >= 1 us, then undivide HCLK.
static void board_clock_init(void)
{
    RCC_APB1ENR1 |= RCC_APB1ENR1_PWR;
    (void)RCC_APB1ENR1;  // the read-back delays the first PWR access until its clock runs

    if ((PWR_CR1 & PWR_CR1_VOS_MASK) != PWR_CR1_VOS_RANGE1) {
        PWR_CR1 = (PWR_CR1 & ~PWR_CR1_VOS_MASK) | PWR_CR1_VOS_RANGE1;
    }
    while (PWR_SR2 & PWR_SR2_VOSF) {
    }

    // Start from MSI at 4 MHz, as after a reset. (A debugger's core-only reset can leave the PLL
    // running as SYSCLK; the PLL cannot be reconfigured while it is the system clock.)
    while (!(RCC_CR & RCC_CR_MSIRDY)) {
    }
    if ((RCC_CFGR & RCC_CFGR_SWS_MASK) != RCC_CFGR_SWS_MSI) {
        RCC_CFGR &= ~RCC_CFGR_SW_MASK;
        while ((RCC_CFGR & RCC_CFGR_SWS_MASK) != RCC_CFGR_SWS_MSI) {
        }
    }
    RCC_CR &= ~RCC_CR_PLLON;  // it may run from MSI, whose range changes next
    while (RCC_CR & RCC_CR_PLLRDY) {
    }
    RCC_CR = (RCC_CR & ~RCC_CR_MSIRANGE_MASK) | RCC_CR_MSIRANGE_4MHZ | RCC_CR_MSIRGSEL;
    while (!(RCC_CR & RCC_CR_MSIRDY)) {
    }
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_HPRE_MASK) | RCC_CFGR_HPRE_DIV2;
    PWR_CR5 &= ~PWR_CR5_R1MODE;
    while (PWR_SR2 & PWR_SR2_VOSF) {
    }

    FLASH_ACR = (FLASH_ACR & ~FLASH_ACR_LATENCY_MASK) | BOARD_FLASH_WAIT_STATES;
    while ((FLASH_ACR & FLASH_ACR_LATENCY_MASK) != BOARD_FLASH_WAIT_STATES) {
    }
    FLASH_ACR |= FLASH_ACR_PRFTEN | FLASH_ACR_ICEN | FLASH_ACR_DCEN;

    // PLL: 4 MHz / M(1) = 4 MHz input (2.66..8 MHz), x N(60) = 240 MHz VCO (64..344), / R(2) = 120 MHz.
    RCC_PLLCFGR = RCC_PLLCFGR_SRC_MSI | RCC_PLLCFGR_M(1u) | RCC_PLLCFGR_N(60u) | RCC_PLLCFGR_REN;
    RCC_CR |= RCC_CR_PLLON;
    while (!(RCC_CR & RCC_CR_PLLRDY)) {
    }

    RCC_CFGR &= ~RCC_CFGR_PPRE_MASK;
    RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL;
    while ((RCC_CFGR & RCC_CFGR_SWS_MASK) != RCC_CFGR_SWS_PLL) {
    }

    DEMCR |= DEMCR_TRCENA;
    DWT_CYCCNT = 0u;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
    board_delay_cycles(BOARD_SYSCLK_HZ / 1000000u * 2u);  // >= 1 us (the core runs at 60 MHz here)
    RCC_CFGR &= ~RCC_CFGR_HPRE_MASK;
}

// LPUART baud rate (RM0432 LPUART chapter, "baud rate generation"): BRR = 256 * f_ck / baud must be
// >= 0x300 and < 2^20, with f_ck = PCLK1 / prescaler between 3x and 4096x the baud rate.
static void board_lpuart_baud(uint32_t baud)
{
    static const uint16_t prescalers[12] = {1, 2, 4, 6, 8, 10, 12, 16, 32, 64, 128, 256};
    uint32_t code = 0u;
    while (code < 11u && BOARD_PCLK1_HZ / prescalers[code] > 4096u * (uint64_t)baud) {
        code++;
    }
    const uint64_t f_ck = BOARD_PCLK1_HZ / prescalers[code];
    LPUART1->presc = code;
    LPUART1->brr = (uint32_t)((256u * f_ck + baud / 2u) / baud);
}

void board_init(void)
{
    board_clock_init();

    RCC_AHB2ENR |= RCC_AHB2ENR_GPIOB | RCC_AHB2ENR_GPIOC | RCC_AHB2ENR_GPIOF | RCC_AHB2ENR_GPIOG;
    (void)RCC_AHB2ENR;
    PWR_CR2 |= PWR_CR2_IOSV;  // PG2..PG15 are supplied by VDDIO2 (RM0432 chapter 5, "Independent I/O supply")

    board_pin_output(GPIOC, PIN_LD1_GREEN, false);
    board_pin_output(GPIOB, PIN_LD2_BLUE, false);
    board_pin_output(GPIOB, PIN_LD3_RED, false);
    board_pin_output(GPIOF, PIN_WAKE, false);
    board_pin_output(GPIOF, PIN_TIMESTAMP, true);

    RCC_APB1ENR2 |= RCC_APB1ENR2_LPUART1;
    RCC_CCIPR &= ~RCC_CCIPR_LPUART1SEL_MASK;
    (void)RCC_APB1ENR2;
    board_pin_alternate(GPIOG, PIN_LPUART_TX, AF_LPUART1, 0u);
    board_pin_alternate(GPIOG, PIN_LPUART_RX, AF_LPUART1, 1u);  // pull-up: idle high if unconnected

    LPUART1->cr1 = 0u;
    LPUART1->cr2 = 0u;
    LPUART1->cr3 = 0u;
    board_lpuart_baud(KWS_UART_BAUD);
    LPUART1->icr = LPUART_ICR_ERRORS;
    LPUART1->cr1 = LPUART_CR1_TE | LPUART_CR1_RE | LPUART_CR1_RXNEIE | LPUART_CR1_UE;
    NVIC_ISER(LPUART1_IRQ / 32u) = 1u << (LPUART1_IRQ % 32u);
    board_ready = true;
}

uint32_t board_ticks(void) { return DWT_CYCCNT; }

uint32_t board_ticks_hz(void) { return BOARD_SYSCLK_HZ; }

uint32_t board_uart_rx_dropped(void) { return board_rx_dropped; }

size_t board_uart_write(const uint8_t *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        while (!(LPUART1->isr & LPUART_ISR_TXE)) {
        }
        LPUART1->tdr = data[i];
    }
    return len;
}

size_t board_uart_read(uint8_t *buf, size_t cap)
{
    size_t n = 0;
    uint32_t tail = board_rx_tail;
    const uint32_t head = board_rx_head;
    while (n < cap && tail != head) {
        buf[n++] = board_rx_ring[tail % BOARD_RX_RING_BYTES];
        tail++;
    }
    board_rx_tail = tail;
    return n;
}

void LPUART1_IRQ_HANDLER(void)
{
    const uint32_t isr = LPUART1->isr;
    if (isr & LPUART_ISR_ORE) {
        board_rx_dropped++;  // at least one byte was lost in hardware
    }
    if (isr & LPUART_ICR_ERRORS) {
        LPUART1->icr = isr & LPUART_ICR_ERRORS;
    }
    if (isr & LPUART_ISR_RXNE) {
        const uint8_t byte = (uint8_t)LPUART1->rdr;
        if (board_audio.state != BOARD_STREAM_IDLE) {
            board_stream_byte(&board_audio, byte);
            if (board_audio.state == BOARD_STREAM_IDLE) {
                GPIOB->bsrr = 1u << (PIN_LD2_BLUE + 16u);  // the stream ended
            }
        } else if (board_rx_head - board_rx_tail < BOARD_RX_RING_BYTES) {
            board_rx_ring[board_rx_head % BOARD_RX_RING_BYTES] = byte;
            board_rx_head = board_rx_head + 1u;
        } else {
            board_rx_dropped++;
        }
    }
    board_interrupt_seen = 1u;
}

int board_audio_start(const board_audio_config *cfg)
{
    static const char request[] = "kws-audio-start 16000 s16le\n";
    if (cfg == NULL || cfg->sample_rate_hz != BOARD_AUDIO_RATE_HZ || board_audio.state != BOARD_STREAM_IDLE) {
        return -1;
    }
    board_irq_disable();
    const int armed = board_stream_start(&board_audio, cfg);
    board_irq_enable();
    if (armed != 0) {
        return -1;
    }
    GPIOB->bsrr = 1u << PIN_LD2_BLUE;
    board_uart_write((const uint8_t *)request, sizeof request - 1u);
    return 0;
}

void board_audio_stop(void)
{
    static const char stop[] = "kws-audio-stop\n";
    board_irq_disable();
    const bool running = board_stream_stop(&board_audio);
    board_irq_enable();
    GPIOB->bsrr = 1u << (PIN_LD2_BLUE + 16u);
    if (running) {
        board_uart_write((const uint8_t *)stop, sizeof stop - 1u);
    }
}

void board_wake_line(bool asserted)
{
    GPIOF->bsrr = asserted ? (1u << PIN_WAKE) : (1u << (PIN_WAKE + 16u));
    GPIOC->bsrr = asserted ? (1u << PIN_LD1_GREEN) : (1u << (PIN_LD1_GREEN + 16u));
}

void board_timestamp_pulse(void)
{
    GPIOF->bsrr = 1u << (PIN_TIMESTAMP + 16u);
    board_delay_cycles(BOARD_SYSCLK_HZ / 1000000u + 8u);  // > 1 us at 120 MHz
    GPIOF->bsrr = 1u << PIN_TIMESTAMP;
}

// With interrupts masked, WFI still wakes on a pending interrupt, so one arriving between the flag
// test and the WFI is not lost; it is taken right after `cpsie i`.
void board_idle(void)
{
    board_irq_disable();
    if (!board_interrupt_seen) {
        __asm__ volatile("dsb\n\twfi" ::: "memory");
    }
    board_interrupt_seen = 0u;
    board_irq_enable();
}

void board_exit(int status)
{
    if (board_ready) {
        while (!(LPUART1->isr & LPUART_ISR_TC)) {  // the last byte has left the shift register
        }
    }
#if KWS_HAVE_SEMIHOST
    // Report the status to a debugger serving semihosting. Only with a debugger attached: without one
    // the trap would be a fault, and a fault inside the HardFault handler locks the core up.
    if (DHCSR & DHCSR_C_DEBUGEN) {
        kws_semihost_exit(status);
    }
#else
    (void)status;
#endif
    for (;;) {
        __asm__ volatile("wfi");
    }
}

// HardFault: a semihosting trap (BKPT 0xAB) taken without a debugger escalates to HardFault with
// HFSR.DEBUGEVT set. Make that call return -1 (r0) and continue after the BKPT, so semihosting builds
// run stand-alone; any other fault is reported by startup_unhandled().
__attribute__((naked)) void startup_hardfault_handler(void)
{
    __asm__ volatile(
        "tst lr, #4\n\t"
        "ite eq\n\t"
        "mrseq r0, msp\n\t"
        "mrsne r0, psp\n\t"
        "b board_hardfault_report\n\t");
}

void board_hardfault_report(uint32_t *frame)
{
    const uint32_t pc = frame[6];  // stacked r0, r1, r2, r3, r12, lr, pc, xpsr
    if ((SCB_HFSR & SCB_HFSR_DEBUGEVT) && (pc & 1u) == 0u && *(const volatile uint16_t *)pc == 0xBEABu) {
        SCB_HFSR = SCB_HFSR_DEBUGEVT;  // write 1 to clear
        frame[0] = 0xFFFFFFFFu;
        frame[6] = pc + 2u;
        return;
    }
    startup_unhandled(3u);
}

// An exception without a handler: LD3 (red) on, "kws: unhandled exception <n>" on the UART if it is
// up, then board_exit(128 + n).
void startup_unhandled(uint32_t exception)
{
    GPIOB->bsrr = 1u << PIN_LD3_RED;
    if (board_ready) {
        kws_print_u64("kws: unhandled exception ", exception);
        kws_print("\n");
    }
    board_exit(128 + (int)exception);
}
