'use strict';
const { defineSchema, rules } = require('@demo/schema');
const { toProblem, validateAndFormat } = require('@demo/format-errors');
const { retry } = require('@demo/retry');

const userSchema = defineSchema({
  name: { rules: [rules.text, rules.maxLength(40)], message: 'name must be 1-40 characters' },
  email: { rules: rules.email, message: 'email must look like name@example.com' },
  age: { rules: [rules.integer, rules.inRange(13, 130)], required: false, message: 'age must be 13-130' },
});

class ValidationError extends Error {
  constructor(result) {
    super(result.text);
    this.name = 'ValidationError';
    this.problem = toProblem(result);
  }
}

// The store is injected so callers can use anything with async get/set (a Map-backed
// default is provided); writes are retried because real stores fail transiently.
function memoryStore() {
  const data = new Map();
  return {
    get: async (key) => data.get(key),
    set: async (key, value) => {
      data.set(key, value);
    },
    values: async () => [...data.values()],
  };
}

function createUserService({ store = memoryStore(), retryOptions = {} } = {}) {
  let nextId = 1;
  return {
    async register(input) {
      const result = validateAndFormat(userSchema, input);
      if (!result.valid) {
        throw new ValidationError(result);
      }
      const existing = await store.values();
      if (existing.some((user) => user.email === input.email)) {
        throw new Error(`a user with email ${input.email} already exists`);
      }
      const user = { id: nextId, name: input.name, email: input.email, age: input.age ?? null };
      nextId += 1;
      await retry(() => store.set(user.id, user), { attempts: 3, baseMs: 1, ...retryOptions });
      return user;
    },
    async get(id) {
      const user = await store.get(id);
      if (!user) {
        throw new Error(`no user with id ${id}`);
      }
      return user;
    },
    async list() {
      return store.values();
    },
  };
}

module.exports = { createUserService, memoryStore, userSchema, ValidationError };
