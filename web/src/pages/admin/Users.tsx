import { useState } from 'react'
import { Link } from 'react-router'
import { useInfiniteQuery } from '@tanstack/react-query'
import { api, must } from '../../api/client'
import { ErrorNote } from '../ErrorNote'
import { planName } from '../../lib/format'
import { credits, day } from '../../me'
import { Loading, Section } from '../account/ui'

// Users lists users, newest first, with a search by email and paging.
export function Users() {
  const [typed, setTyped] = useState('')
  const [email, setEmail] = useState('')
  const q = useInfiniteQuery({
    queryKey: ['admin-users', email],
    initialPageParam: undefined as string | undefined,
    queryFn: async ({ pageParam }) => must(await api.GET('/v1/admin/users', {
      params: { query: { limit: 25, email: email || undefined, before: pageParam } },
    })),
    getNextPageParam: (last) => last.next_before ?? undefined,
  })
  const users = q.data?.pages.flatMap((p) => p.users) ?? []
  return (
    <Section id="users" title="Users">
      <form role="search" className="search" onSubmit={(e) => { e.preventDefault(); setEmail(typed.trim()) }}>
        <label htmlFor="user-search" className="visually-hidden">Search users by email</label>
        <input id="user-search" type="search" value={typed} placeholder="Search by email" maxLength={255}
          onChange={(e) => setTyped(e.target.value)} />
        <button type="submit" className="secondary">Search</button>
      </form>
      {q.isPending ? <Loading what="users" /> : q.error ? <ErrorNote error={q.error} what="Loading users" /> :
        users.length === 0 ? <p className="empty">{email ? `No user's email contains “${email}”.` : 'No users yet.'}</p> : (
          <>
            <div className="table-wrap">
              <table>
                <caption className="visually-hidden">Users</caption>
                <thead><tr><th scope="col">Email</th><th scope="col">Plan</th><th scope="col">Available</th><th scope="col">Status</th><th scope="col">Joined</th></tr></thead>
                <tbody>
                  {users.map((u) => (
                    <tr key={u.id}>
                      <td><Link to={`users/${u.id}`}>{u.email}</Link>{u.role === 'admin' && <span className="tag admin">admin</span>}</td>
                      <td>{planName(u.plan)}</td>
                      <td className="num">{credits(u.credits_available)}</td>
                      <td><span className={`tag ${u.is_active ? 'active' : 'suspended'}`}>{u.is_active ? 'active' : 'suspended'}</span></td>
                      <td>{day(u.created_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            {q.hasNextPage && (
              <button type="button" className="secondary" onClick={() => void q.fetchNextPage()} disabled={q.isFetchingNextPage}>
                {q.isFetchingNextPage ? 'Loading…' : 'More users'}
              </button>
            )}
          </>
        )}
    </Section>
  )
}
