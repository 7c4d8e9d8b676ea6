/** The admin API token the bench's demo servers accept, for the growth scenario's admin search (issue 15). */
export const BENCH_ADMIN_TOKEN = 'bench-admin-token-0123456789abcdefghijklmnopqrstuvwxyz';
