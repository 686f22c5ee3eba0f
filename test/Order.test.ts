import { assert, describe, it } from "@effect/vitest"
import { CommandHandler, Decider, EventStore } from "@facta/core"
import { DeciderSpec } from "@facta/testing"
import { Effect, Schema } from "effect"
import {
  Cancelled,
  EmptyOrder,
  InvalidQuantity,
  InvalidUnitPrice,
  Order,
  OrderAlreadyCancelled,
  OrderAlreadyCreated,
  OrderAlreadyPaid,
  OrderAlreadyShipped,
  OrderCancelled,
  type OrderCommand,
  OrderCreated,
  OrderEvent,
  OrderNotFound,
  OrderNotPaid,
  OrderPaid,
  OrderShipped,
  OrderTotalTooLarge,
  Paid,
  PaymentAmountMismatch,
  Pending,
  Shipped
} from "./fixtures/Order.ts"

const spec = DeciderSpec.make(Order.decider)

const items = [
  { productId: "book", quantity: 2, unitPrice: 1250 },
  { productId: "pen", quantity: 3, unitPrice: 199 }
]
const total = 2 * 1250 + 3 * 199

// Commands are built as plain values rather than with `make`, which would validate them: `decide` has to reject what
// the command schema would, too (a caller may skip decoding).
const createWith = (orderItems: Extract<OrderCommand, { _tag: "CreateOrder" }>["items"]): OrderCommand => ({
  _tag: "CreateOrder",
  userId: "user-1",
  items: orderItems
})
const create = createWith(items)
const pay = (amount: number): OrderCommand => ({ _tag: "PayOrder", chargeId: "ch-1", amount })
const ship: OrderCommand = { _tag: "ShipOrder", trackingNumber: "1Z999", carrier: "UPS" }
const cancel: OrderCommand = { _tag: "CancelOrder", reason: "changed my mind" }

const created = OrderCreated.make({ userId: "user-1", items })
const paid = OrderPaid.make({ chargeId: "ch-1", amount: total })
const shipped = OrderShipped.make({ trackingNumber: "1Z999", carrier: "UPS" })
const cancelled = OrderCancelled.make({ reason: "changed my mind" })

const pending = Pending.make({ userId: "user-1", items, total })

describe("Order: CreateOrder", () => {
  it.effect("creates an order with its items and total", () =>
    Effect.gen(function* () {
      yield* spec.given().when(create).thenEvents([created])
      yield* spec.given().when(create).thenState(pending)
    })
  )

  it.effect("accepts free items (unit price 0) and an order totalling 0", () =>
    Effect.gen(function* () {
      const freebies = [{ productId: "sticker", quantity: 5, unitPrice: 0 }]
      yield* spec
        .given()
        .when(createWith(freebies))
        .thenState(Pending.make({ userId: "user-1", items: freebies, total: 0 }))
    })
  )

  it.effect("rejects creating an order twice, whatever became of it", () =>
    Effect.gen(function* () {
      yield* spec.given([created]).when(create).thenFails(new OrderAlreadyCreated())
      yield* spec.given([created, paid, shipped]).when(create).thenFails(new OrderAlreadyCreated())
      yield* spec.given([created, cancelled]).when(create).thenFails(new OrderAlreadyCreated())
    })
  )

  it.effect("rejects an order without items", () => spec.given().when(createWith([])).thenFails(new EmptyOrder()))

  it.effect.each([0, -1, 1.5])("rejects the quantity %s", (quantity) =>
    spec
      .given()
      .when(createWith([...items, { productId: "mug", quantity, unitPrice: 900 }]))
      .thenFails(new InvalidQuantity({ productId: "mug", quantity }))
  )

  it.effect.each([-1, 9.99])("rejects the unit price %s (prices are non-negative integer minor units)", (unitPrice) =>
    spec
      .given()
      .when(createWith([{ productId: "mug", quantity: 1, unitPrice }]))
      .thenFails(new InvalidUnitPrice({ productId: "mug", unitPrice }))
  )

  it.effect("rejects an order whose total is not a safe integer", () =>
    spec
      .given()
      .when(createWith([{ productId: "yacht", quantity: 2, unitPrice: Number.MAX_SAFE_INTEGER }]))
      .thenFails(new OrderTotalTooLarge())
  )
})

describe("Order: PayOrder", () => {
  it.effect("pays a pending order with exactly its total", () =>
    Effect.gen(function* () {
      yield* spec.given([created]).when(pay(total)).thenEvents([paid])
      yield* spec
        .given([created])
        .when(pay(total))
        .thenState(Paid.make({ ...fieldsOf(pending), chargeId: "ch-1" }))
    })
  )

  it.effect.each([total - 1, total + 1, 0, total + 0.5])("rejects the amount %s", (amount) =>
    spec
      .given([created])
      .when(pay(amount))
      .thenFails(new PaymentAmountMismatch({ expected: total, actual: amount }))
  )

  it.effect("rejects paying twice", () =>
    Effect.gen(function* () {
      yield* spec
        .given([created, paid])
        .when(pay(total))
        .thenFails(new OrderAlreadyPaid({ chargeId: "ch-1" }))
      yield* spec
        .given([created, paid, shipped])
        .when(pay(total))
        .thenFails(new OrderAlreadyPaid({ chargeId: "ch-1" }))
    })
  )

  it.effect("rejects paying a cancelled order", () =>
    spec
      .given([created, cancelled])
      .when(pay(total))
      .thenFails(new OrderAlreadyCancelled({ command: "PayOrder" }))
  )

  it.effect("rejects paying an order that does not exist", () =>
    spec
      .given()
      .when(pay(total))
      .thenFails(new OrderNotFound({ command: "PayOrder" }))
  )
})

describe("Order: ShipOrder", () => {
  it.effect("ships a paid order", () =>
    Effect.gen(function* () {
      yield* spec.given([created, paid]).when(ship).thenEvents([shipped])
      yield* spec
        .given([created, paid])
        .when(ship)
        .thenState(Shipped.make({ ...fieldsOf(pending), chargeId: "ch-1", trackingNumber: "1Z999", carrier: "UPS" }))
    })
  )

  it.effect("rejects shipping an unpaid order", () => spec.given([created]).when(ship).thenFails(new OrderNotPaid()))

  it.effect("rejects shipping twice", () =>
    spec
      .given([created, paid, shipped])
      .when(ship)
      .thenFails(new OrderAlreadyShipped({ command: "ShipOrder" }))
  )

  it.effect("rejects shipping a cancelled order, paid or not", () =>
    Effect.gen(function* () {
      yield* spec
        .given([created, cancelled])
        .when(ship)
        .thenFails(new OrderAlreadyCancelled({ command: "ShipOrder" }))
      yield* spec
        .given([created, paid, cancelled])
        .when(ship)
        .thenFails(new OrderAlreadyCancelled({ command: "ShipOrder" }))
    })
  )

  it.effect("rejects shipping an order that does not exist", () =>
    spec
      .given()
      .when(ship)
      .thenFails(new OrderNotFound({ command: "ShipOrder" }))
  )
})

describe("Order: CancelOrder", () => {
  it.effect("cancels a pending order, with nothing to refund", () =>
    Effect.gen(function* () {
      yield* spec.given([created]).when(cancel).thenEvents([cancelled])
      yield* spec
        .given([created])
        .when(cancel)
        .thenState(Cancelled.make({ ...fieldsOf(pending), chargeId: null, reason: "changed my mind" }))
    })
  )

  it.effect("cancels a paid order, keeping the charge to refund", () =>
    spec
      .given([created, paid])
      .when(cancel)
      .thenState(Cancelled.make({ ...fieldsOf(pending), chargeId: "ch-1", reason: "changed my mind" }))
  )

  it.effect("rejects cancelling a shipped order", () =>
    spec
      .given([created, paid, shipped])
      .when(cancel)
      .thenFails(new OrderAlreadyShipped({ command: "CancelOrder" }))
  )

  it.effect("rejects cancelling twice", () =>
    spec
      .given([created, cancelled])
      .when(cancel)
      .thenFails(new OrderAlreadyCancelled({ command: "CancelOrder" }))
  )

  it.effect("rejects cancelling an order that does not exist", () =>
    spec
      .given()
      .when(cancel)
      .thenFails(new OrderNotFound({ command: "CancelOrder" }))
  )
})

describe("Order aggregate", () => {
  it("is terminal once shipped or cancelled", () => {
    const stateAfter = (events: ReadonlyArray<OrderEvent>) =>
      Decider.fold(Order.decider, Order.decider.initialState, events)
    assert.isFalse(Decider.isTerminal(Order.decider, stateAfter([])))
    assert.isFalse(Decider.isTerminal(Order.decider, stateAfter([created])))
    assert.isFalse(Decider.isTerminal(Order.decider, stateAfter([created, paid])))
    assert.isTrue(Decider.isTerminal(Order.decider, stateAfter([created, paid, shipped])))
    assert.isTrue(Decider.isTerminal(Order.decider, stateAfter([created, cancelled])))
  })

  it("keeps money in integer minor units: events with fractional or negative amounts do not validate", () => {
    const isEvent = Schema.is(OrderEvent)
    assert.isTrue(isEvent(created))
    assert.isFalse(isEvent({ ...paid, amount: 10.5 }))
    assert.isFalse(isEvent({ ...paid, amount: -1 }))
    assert.isFalse(isEvent({ ...created, items: [{ productId: "x", quantity: 1, unitPrice: 0.5 }] }))
    assert.isFalse(isEvent({ ...created, items: [{ productId: "x", quantity: 0, unitPrice: 1 }] }))
    assert.isFalse(isEvent({ ...created, items: [] }))
  })

  it.effect("runs through command handling against the in-memory store", () =>
    Effect.gen(function* () {
      yield* CommandHandler.handle(Order, "Order-1", create)
      yield* CommandHandler.handle(Order, "Order-1", pay(total))
      const result = yield* CommandHandler.handle(Order, "Order-1", ship)
      assert.strictEqual(result.version, 3)
      assert.isTrue(result.terminal)
      assert.deepStrictEqual(result.events, [shipped])
      const loaded = yield* CommandHandler.load(Order, "Order-1")
      assert.deepStrictEqual(loaded.state, result.state)
      assert.strictEqual(loaded.state._tag, "Shipped")
      const rejected = yield* Effect.flip(CommandHandler.handle(Order, "Order-1", cancel))
      assert.deepStrictEqual(rejected, new OrderAlreadyShipped({ command: "CancelOrder" }))
    }).pipe(Effect.provide(EventStore.layerMemory))
  )
})

function fieldsOf(state: typeof Pending.Type) {
  return { userId: state.userId, items: state.items, total: state.total }
}
