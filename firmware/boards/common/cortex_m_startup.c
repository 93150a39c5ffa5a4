// Cortex-M startup shared by the ARM boards: vector table, reset, default exception handler.
//
// Reset: enable the FPU (we build with -mfloat-abi=hard), copy .data from its load address, zero
// .bss, run main(), then pass main's return value to board_exit().
// The board's board.mk sets -DSTARTUP_NUM_IRQS=<external interrupts> (a multiple of 8, at most 96)
// and its linker script provides __data_load/__data_start/__data_end/__bss_start/__bss_end/__stack_top.
// A handler is installed by defining the weak name, e.g. `void startup_irq8_handler(void)`.
// An exception without a handler calls startup_unhandled(exception number): by default it stops
// there (a debugger shows where); a board may define it to report and exit instead.

#include <stdint.h>
#include <string.h>

#include "kws/board.h"

#ifndef STARTUP_NUM_IRQS
#error "board.mk must define STARTUP_NUM_IRQS"
#endif
#if STARTUP_NUM_IRQS % 8 != 0 || STARTUP_NUM_IRQS < 8 || STARTUP_NUM_IRQS > 96
#error "STARTUP_NUM_IRQS must be a multiple of 8 from 8 to 96"
#endif

extern uint32_t __data_load[];
extern uint32_t __data_start[];
extern uint32_t __data_end[];
extern uint32_t __bss_start[];
extern uint32_t __bss_end[];
extern uint32_t __stack_top[];

int main(void);

void startup_reset_handler(void);
void startup_default_handler(void);
void startup_unhandled(uint32_t exception);

#define STARTUP_HANDLER(name) void name(void) __attribute__((weak, alias("startup_default_handler")))

STARTUP_HANDLER(startup_nmi_handler);
STARTUP_HANDLER(startup_hardfault_handler);
STARTUP_HANDLER(startup_memmanage_handler);
STARTUP_HANDLER(startup_busfault_handler);
STARTUP_HANDLER(startup_usagefault_handler);
STARTUP_HANDLER(startup_svc_handler);
STARTUP_HANDLER(startup_debugmon_handler);
STARTUP_HANDLER(startup_pendsv_handler);
STARTUP_HANDLER(startup_systick_handler);
STARTUP_HANDLER(startup_irq0_handler);
STARTUP_HANDLER(startup_irq1_handler);
STARTUP_HANDLER(startup_irq2_handler);
STARTUP_HANDLER(startup_irq3_handler);
STARTUP_HANDLER(startup_irq4_handler);
STARTUP_HANDLER(startup_irq5_handler);
STARTUP_HANDLER(startup_irq6_handler);
STARTUP_HANDLER(startup_irq7_handler);
STARTUP_HANDLER(startup_irq8_handler);
STARTUP_HANDLER(startup_irq9_handler);
STARTUP_HANDLER(startup_irq10_handler);
STARTUP_HANDLER(startup_irq11_handler);
STARTUP_HANDLER(startup_irq12_handler);
STARTUP_HANDLER(startup_irq13_handler);
STARTUP_HANDLER(startup_irq14_handler);
STARTUP_HANDLER(startup_irq15_handler);
STARTUP_HANDLER(startup_irq16_handler);
STARTUP_HANDLER(startup_irq17_handler);
STARTUP_HANDLER(startup_irq18_handler);
STARTUP_HANDLER(startup_irq19_handler);
STARTUP_HANDLER(startup_irq20_handler);
STARTUP_HANDLER(startup_irq21_handler);
STARTUP_HANDLER(startup_irq22_handler);
STARTUP_HANDLER(startup_irq23_handler);
STARTUP_HANDLER(startup_irq24_handler);
STARTUP_HANDLER(startup_irq25_handler);
STARTUP_HANDLER(startup_irq26_handler);
STARTUP_HANDLER(startup_irq27_handler);
STARTUP_HANDLER(startup_irq28_handler);
STARTUP_HANDLER(startup_irq29_handler);
STARTUP_HANDLER(startup_irq30_handler);
STARTUP_HANDLER(startup_irq31_handler);
STARTUP_HANDLER(startup_irq32_handler);
STARTUP_HANDLER(startup_irq33_handler);
STARTUP_HANDLER(startup_irq34_handler);
STARTUP_HANDLER(startup_irq35_handler);
STARTUP_HANDLER(startup_irq36_handler);
STARTUP_HANDLER(startup_irq37_handler);
STARTUP_HANDLER(startup_irq38_handler);
STARTUP_HANDLER(startup_irq39_handler);
STARTUP_HANDLER(startup_irq40_handler);
STARTUP_HANDLER(startup_irq41_handler);
STARTUP_HANDLER(startup_irq42_handler);
STARTUP_HANDLER(startup_irq43_handler);
STARTUP_HANDLER(startup_irq44_handler);
STARTUP_HANDLER(startup_irq45_handler);
STARTUP_HANDLER(startup_irq46_handler);
STARTUP_HANDLER(startup_irq47_handler);
STARTUP_HANDLER(startup_irq48_handler);
STARTUP_HANDLER(startup_irq49_handler);
STARTUP_HANDLER(startup_irq50_handler);
STARTUP_HANDLER(startup_irq51_handler);
STARTUP_HANDLER(startup_irq52_handler);
STARTUP_HANDLER(startup_irq53_handler);
STARTUP_HANDLER(startup_irq54_handler);
STARTUP_HANDLER(startup_irq55_handler);
STARTUP_HANDLER(startup_irq56_handler);
STARTUP_HANDLER(startup_irq57_handler);
STARTUP_HANDLER(startup_irq58_handler);
STARTUP_HANDLER(startup_irq59_handler);
STARTUP_HANDLER(startup_irq60_handler);
STARTUP_HANDLER(startup_irq61_handler);
STARTUP_HANDLER(startup_irq62_handler);
STARTUP_HANDLER(startup_irq63_handler);
STARTUP_HANDLER(startup_irq64_handler);
STARTUP_HANDLER(startup_irq65_handler);
STARTUP_HANDLER(startup_irq66_handler);
STARTUP_HANDLER(startup_irq67_handler);
STARTUP_HANDLER(startup_irq68_handler);
STARTUP_HANDLER(startup_irq69_handler);
STARTUP_HANDLER(startup_irq70_handler);
STARTUP_HANDLER(startup_irq71_handler);
STARTUP_HANDLER(startup_irq72_handler);
STARTUP_HANDLER(startup_irq73_handler);
STARTUP_HANDLER(startup_irq74_handler);
STARTUP_HANDLER(startup_irq75_handler);
STARTUP_HANDLER(startup_irq76_handler);
STARTUP_HANDLER(startup_irq77_handler);
STARTUP_HANDLER(startup_irq78_handler);
STARTUP_HANDLER(startup_irq79_handler);
STARTUP_HANDLER(startup_irq80_handler);
STARTUP_HANDLER(startup_irq81_handler);
STARTUP_HANDLER(startup_irq82_handler);
STARTUP_HANDLER(startup_irq83_handler);
STARTUP_HANDLER(startup_irq84_handler);
STARTUP_HANDLER(startup_irq85_handler);
STARTUP_HANDLER(startup_irq86_handler);
STARTUP_HANDLER(startup_irq87_handler);
STARTUP_HANDLER(startup_irq88_handler);
STARTUP_HANDLER(startup_irq89_handler);
STARTUP_HANDLER(startup_irq90_handler);
STARTUP_HANDLER(startup_irq91_handler);
STARTUP_HANDLER(startup_irq92_handler);
STARTUP_HANDLER(startup_irq93_handler);
STARTUP_HANDLER(startup_irq94_handler);
STARTUP_HANDLER(startup_irq95_handler);

typedef void (*startup_handler)(void);

typedef struct {
    uint32_t *initial_sp;
    startup_handler handlers[15 + STARTUP_NUM_IRQS];
} startup_vector_table;

__attribute__((section(".vectors"), used)) const startup_vector_table startup_vectors = {
    __stack_top,
    {
        startup_reset_handler,
        startup_nmi_handler,
        startup_hardfault_handler,
        startup_memmanage_handler,
        startup_busfault_handler,
        startup_usagefault_handler,
        0, 0, 0, 0,  // reserved
        startup_svc_handler,
        startup_debugmon_handler,
        0,  // reserved
        startup_pendsv_handler,
        startup_systick_handler,
        startup_irq0_handler, startup_irq1_handler, startup_irq2_handler, startup_irq3_handler,
        startup_irq4_handler, startup_irq5_handler, startup_irq6_handler, startup_irq7_handler,
#if STARTUP_NUM_IRQS > 8
        startup_irq8_handler, startup_irq9_handler, startup_irq10_handler, startup_irq11_handler,
        startup_irq12_handler, startup_irq13_handler, startup_irq14_handler, startup_irq15_handler,
#endif
#if STARTUP_NUM_IRQS > 16
        startup_irq16_handler, startup_irq17_handler, startup_irq18_handler, startup_irq19_handler,
        startup_irq20_handler, startup_irq21_handler, startup_irq22_handler, startup_irq23_handler,
#endif
#if STARTUP_NUM_IRQS > 24
        startup_irq24_handler, startup_irq25_handler, startup_irq26_handler, startup_irq27_handler,
        startup_irq28_handler, startup_irq29_handler, startup_irq30_handler, startup_irq31_handler,
#endif
#if STARTUP_NUM_IRQS > 32
        startup_irq32_handler, startup_irq33_handler, startup_irq34_handler, startup_irq35_handler,
        startup_irq36_handler, startup_irq37_handler, startup_irq38_handler, startup_irq39_handler,
#endif
#if STARTUP_NUM_IRQS > 40
        startup_irq40_handler, startup_irq41_handler, startup_irq42_handler, startup_irq43_handler,
        startup_irq44_handler, startup_irq45_handler, startup_irq46_handler, startup_irq47_handler,
#endif
#if STARTUP_NUM_IRQS > 48
        startup_irq48_handler, startup_irq49_handler, startup_irq50_handler, startup_irq51_handler,
        startup_irq52_handler, startup_irq53_handler, startup_irq54_handler, startup_irq55_handler,
#endif
#if STARTUP_NUM_IRQS > 56
        startup_irq56_handler, startup_irq57_handler, startup_irq58_handler, startup_irq59_handler,
        startup_irq60_handler, startup_irq61_handler, startup_irq62_handler, startup_irq63_handler,
#endif
#if STARTUP_NUM_IRQS > 64
        startup_irq64_handler, startup_irq65_handler, startup_irq66_handler, startup_irq67_handler,
        startup_irq68_handler, startup_irq69_handler, startup_irq70_handler, startup_irq71_handler,
#endif
#if STARTUP_NUM_IRQS > 72
        startup_irq72_handler, startup_irq73_handler, startup_irq74_handler, startup_irq75_handler,
        startup_irq76_handler, startup_irq77_handler, startup_irq78_handler, startup_irq79_handler,
#endif
#if STARTUP_NUM_IRQS > 80
        startup_irq80_handler, startup_irq81_handler, startup_irq82_handler, startup_irq83_handler,
        startup_irq84_handler, startup_irq85_handler, startup_irq86_handler, startup_irq87_handler,
#endif
#if STARTUP_NUM_IRQS > 88
        startup_irq88_handler, startup_irq89_handler, startup_irq90_handler, startup_irq91_handler,
        startup_irq92_handler, startup_irq93_handler, startup_irq94_handler, startup_irq95_handler,
#endif
    },
};

#define STARTUP_SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)
#define STARTUP_SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

void startup_reset_handler(void)
{
    // Full access to CP10/CP11 (the FPU) before any floating-point instruction: we build with
    // -mfloat-abi=hard, so compiled code may use s0-s31 anywhere from here on.
    STARTUP_SCB_CPACR |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    STARTUP_SCB_VTOR = (uint32_t)(uintptr_t)&startup_vectors;

    memcpy(__data_start, __data_load, (size_t)((uintptr_t)__data_end - (uintptr_t)__data_start));
    memset(__bss_start, 0, (size_t)((uintptr_t)__bss_end - (uintptr_t)__bss_start));

    board_exit(main());
}

__attribute__((weak)) void startup_unhandled(uint32_t exception)
{
    (void)exception;
    for (;;) {
    }
}

void startup_default_handler(void)
{
    uint32_t ipsr;
    __asm__ volatile("mrs %0, ipsr" : "=r"(ipsr));
    startup_unhandled(ipsr & 0x1FFu);
}
