import { Link, Route, Routes } from 'react-router'
import { useMe } from '../../me'
import { ErrorNote } from '../ErrorNote'
import { Loading } from '../account/ui'
import { Users } from './Users'
import { UserDetail } from './UserDetail'
import { Billing } from './Billing'
import '../../account.css'

// Admin is the administrators' console: users, one user's account, and
// billing. Everyone else is told it is not for them (the API refuses them
// too: every /v1/admin route answers 403).
export function Admin() {
  const me = useMe()
  if (me.isPending) return <Loading what="your account" />
  if (me.error) return <ErrorNote error={me.error} what="Loading your account" />
  if (me.data.user.role !== 'admin') {
    return (
      <section className="refused-page" aria-labelledby="refused-h">
        <h1 id="refused-h">Administrators only</h1>
        <p>This part of Easel is for administrators. Your account ({me.data.user.email}) is not one.</p>
        <p><Link to="/">Back to Generate</Link></p>
      </section>
    )
  }
  return (
    <div className="admin">
      <Routes>
        <Route index element={<><h1>Admin</h1><Billing /><Users /></>} />
        <Route path="users/:id" element={<UserDetail />} />
      </Routes>
    </div>
  )
}
