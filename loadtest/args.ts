/**
 * The load test's and the benchmarks' command lines: an unknown option or a bad value ends the run
 * with a message naming it and the usage (exit 2), not a stack trace; --help prints the usage (exit 0).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

type Options = NonNullable<ParseArgsConfig['options']>;

const HELP = { help: { type: 'boolean', default: false } } as const;

export function benchArgs<O extends Options>(usage: string, options: O) {
  /** Ends the run naming what is wrong. */
  function fail(message: string): never {
    process.stderr.write(`${message}\nusage: ${usage}\n`);
    process.exit(2);
  }
  const parse = () => parseArgs({ options: { ...options, ...HELP }, strict: true }).values;
  let values: ReturnType<typeof parse> | undefined;
  try {
    values = parse();
  } catch (err) {
    fail((err as Error).message);
  }
  if ((values as { help?: boolean }).help) {
    process.stdout.write(`usage: ${usage}\n`);
    process.exit(0);
  }
  /** `value` of option `name` as a number, when `ok` takes it; else the run ends saying it `must be` what it says. */
  const checked = (name: string, value: string | undefined, ok: (n: number) => boolean, mustBe: string): number => {
    const n = Number(value);
    if (value === undefined || value.trim() === '' || !ok(n)) fail(`--${name}: '${value ?? ''}' must be ${mustBe}`);
    return n;
  };
  /** `value` of option `name` as a whole number from `min` to `max`. */
  const whole = (name: string, value: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number =>
    checked(name, value, (n) => Number.isInteger(n) && n >= min && n <= max, `a whole number ${max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`}`);
  /** `value` of option `name` as a number (fractions allowed) of at least `min`. */
  const number = (name: string, value: string | undefined, min: number): number => checked(name, value, (n) => Number.isFinite(n) && n >= min, `a number of at least ${min}`);
  /** `value` of option `name` as a comma-separated list of whole numbers from `min` to `max`. */
  const wholeList = (name: string, value: string, min: number, max = Number.MAX_SAFE_INTEGER): number[] => value.split(',').map((v) => whole(name, v, min, max));
  /** `value` of option `name`, which must be given. */
  const required = (name: string, value: string | undefined): string => (value === undefined || value === '' ? fail(`--${name} is required`) : value);
  return { values: values!, fail, whole, number, wholeList, required };
}
