/**
 * A worker's id: as long as a nanoid, but letters and digits only. Operators type ids as
 * arguments (`tg list <worker>`), and an id starting with '-' (one nanoid in 64) was taken for
 * an option.
 */
import { customAlphabet } from 'nanoid';

export const newWorkerId: () => string = customAlphabet('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', 21);
