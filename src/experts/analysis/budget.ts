/**
 * Cache budgets: a share of all experts ("0.25", "25%") or a size in bytes
 * ("512MB", "1.5GiB"; kB, MB, GB, TB are powers of 1000, KiB..TiB of 1024),
 * turned into a whole number of expert slots.
 */

export type Budget = { kind: 'fraction'; fraction: number } | { kind: 'bytes'; bytes: number };

const BYTE_UNITS: Record<string, number> = {
  b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4,
};

export class BudgetError extends Error {
  override readonly name = 'BudgetError';
}

export function parseBudget(text: string): Budget {
  const m = /^\s*(\d+(?:\.\d+)?|\.\d+)\s*(%|[kmgt]i?b|b)?\s*$/i.exec(text);
  if (!m) throw new BudgetError(`budget '${text}' is neither a fraction (0.25, 25%) nor a size (512MB, 2GiB)`);
  const value = Number(m[1]);
  const unit = m[2]?.toLowerCase();
  if (unit === undefined || unit === '%') {
    const fraction = unit === '%' ? value / 100 : value;
    if (fraction > 1) throw new BudgetError(`budget '${text}' exceeds all experts; give a fraction up to 1 or a size with a unit (MB, GiB)`);
    return { kind: 'fraction', fraction };
  }
  return { kind: 'bytes', bytes: value * BYTE_UNITS[unit] };
}

/** Whole slots within the budget (rounded down; a hair of float error is forgiven). */
export function budgetSlots(budget: Budget, totalExperts: number, expertBytes?: number): number {
  if (budget.kind === 'fraction') return Math.floor(budget.fraction * totalExperts + 1e-9);
  if (expertBytes === undefined || !(expertBytes > 0)) {
    throw new BudgetError('a budget in bytes needs the size of one expert (--expert-bytes, or expert_bytes in the trace header)');
  }
  return Math.min(totalExperts, Math.floor(budget.bytes / expertBytes + 1e-9));
}
