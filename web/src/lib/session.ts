import { useSyncExternalStore } from 'react'
import type { Schemas } from '../api/client'
import { currentUser, onUserChange } from '../auth'
import { emptyDraft, type Draft } from './request'

type Generation = Schemas['Generation']

// What the Generate page keeps while the app is open, so that leaving it
// for the gallery and coming back finds the form as typed and the jobs
// started from it: in memory, like the tokens, and gone on reload.

function store<T>(initial: T) {
  let value = initial
  const listeners = new Set<() => void>()
  return {
    get: () => value,
    set(next: T) {
      value = next
      listeners.forEach((l) => l())
    },
    subscribe(l: () => void) {
      listeners.add(l)
      return () => void listeners.delete(l)
    },
  }
}

const jobs = store<Generation[]>([])

// The jobs started from the Generate page, newest first (at most 20).
export function useSessionJobs(): Generation[] {
  return useSyncExternalStore(jobs.subscribe, jobs.get)
}

// addSessionJob shows a job the API admitted (or answered again for the
// same Idempotency-Key: then it is already there).
export function addSessionJob(g: Generation) {
  if (jobs.get().some((j) => j.id === g.id)) return
  jobs.set([g, ...jobs.get()].slice(0, 20))
}

export function dismissSessionJob(id: string) {
  jobs.set(jobs.get().filter((j) => j.id !== id))
}

let draft: Draft = emptyDraft

export const savedDraft = () => draft
export function saveDraft(d: Draft) {
  draft = d
}

// Signing out forgets it all: the next person at this browser starts afresh.
onUserChange(() => {
  if (currentUser()) return
  jobs.set([])
  draft = emptyDraft
})
