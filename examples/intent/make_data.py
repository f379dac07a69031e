"""Generates the demo's commerce support utterances: 12 intents, a training split from one
set of phrasings and a held-out split from a different set, written differently (other
words, other structure), both with typos, casing, punctuation, greetings and emoji.

    python make_data.py      # writes train.csv and heldout.csv (text,intent)
"""

import csv
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(2026)

PRODUCTS = ["shoes", "jacket", "phone case", "coffee maker", "crème brûlée torch", "lamp",
            "headphones", "sofa cushion", "café table", "backpack", "dress", "blender"]
CITIES = ["Berlin", "Lyon", "Madrid", "Leeds", "Porto", "Gdańsk", "Zürich", "Milan"]


def order():
    return rng.choice(["#", "no. ", "", "order "]) + str(rng.randint(100000, 999999))


def fill(t):
    return (t.replace("{order}", order()).replace("{product}", rng.choice(PRODUCTS))
             .replace("{city}", rng.choice(CITIES)).replace("{days}", str(rng.randint(2, 14))))


# Training phrasings (set A).
TRAIN = {
    "order_status": ["where is my order {order}", "track my package", "has my order shipped yet",
                     "when will my {product} arrive", "order status please", "is {order} on its way",
                     "what's the status of my order", "i ordered {days} days ago where is it",
                     "tracking number for {order}", "when does my parcel get here"],
    "cancel_order": ["cancel my order {order}", "i want to cancel the purchase", "please stop my order",
                     "cancel the {product} i just bought", "i changed my mind cancel it",
                     "how do i cancel an order", "cancel {order} please", "dont send the {product}",
                     "i need to cancel before it ships", "cancel everything i ordered today"],
    "return_item": ["i want to return the {product}", "how do i send the item back", "return a product",
                    "the {product} doesnt fit can i return it", "start a return for {order}",
                    "i need a return label", "can i send back the {product}", "return policy for {product}",
                    "how many days do i have to return", "i want to exchange my {product}"],
    "refund_status": ["where is my refund", "when will i get my money back", "refund for {order}",
                      "i returned the {product} but no refund yet", "has my refund been processed",
                      "how long do refunds take", "still waiting for my refund", "refund status",
                      "you owe me money for {order}", "did you get my return and refund me"],
    "change_delivery_address": ["change my delivery address", "ship {order} to a different address",
                                "i moved to {city} update the address", "wrong address on my order",
                                "can you deliver to my office instead", "update shipping address for {order}",
                                "send it to {city} please", "edit the address before it ships",
                                "i typed the wrong street", "deliver to my neighbour instead"],
    "delivery_problem": ["my package arrived damaged", "the courier never came", "parcel says delivered but nothing here",
                         "the {product} box was broken", "delivery is late by {days} days",
                         "driver left it in the rain", "wrong item delivered", "missing items in my parcel",
                         "my order {order} was lost", "the delivery guy was rude"],
    "product_availability": ["is the {product} in stock", "when will {product} be available again",
                             "do you have the {product} in blue", "is this available in size 42",
                             "restock date for {product}", "can i buy the {product} in {city} store",
                             "is the {product} sold out", "notify me when {product} is back",
                             "do you still sell the {product}", "how many {product} left"],
    "payment_problem": ["my card was declined", "i was charged twice for {order}", "payment failed",
                        "paypal is not working at checkout", "why was i charged for {order}",
                        "the payment went through but no order", "cant pay with my credit card",
                        "double charge on my bank statement", "checkout error when paying",
                        "apple pay keeps failing"],
    "discount_code": ["my promo code doesnt work", "do you have a discount code", "coupon not applied",
                      "where do i enter the voucher", "is there a student discount",
                      "the code SAVE10 is invalid", "any sales on {product}", "discount for first order",
                      "my gift card wont apply", "black friday deals"],
    "account": ["reset my password", "i cant log in", "change my email address", "delete my account",
                "how do i update my profile", "my account is locked", "forgot my username",
                "unsubscribe me from emails", "change my phone number on the account",
                "two factor code not arriving"],
    "complaint": ["this is unacceptable", "worst service ever", "i am very disappointed with the {product}",
                  "your quality has gone down", "i want to file a complaint",
                  "nobody answers my emails", "this is the third time this happens", "terrible experience",
                  "i will never order again", "your support is useless"],
    "talk_to_human": ["talk to a human", "i want a real person", "connect me to an agent",
                      "speak to someone please", "human support now", "can i call customer service",
                      "let me talk to a manager", "stop the bot i need a person", "live chat with staff",
                      "transfer me to an operator"],
}

# Held-out phrasings (set B): other words and structures, never seen in training.
HELDOUT = {
    "order_status": ["any update on the delivery of {order}?", "my {product} hasn't shown up, where's it at",
                     "could you tell me where my shipment is", "expected arrival for my purchase?",
                     "is my stuff dispatched"],
    "cancel_order": ["please void order {order}", "i no longer want the {product}, stop it",
                     "can the purchase be called off", "scrap my order, bought by mistake",
                     "undo my last order"],
    "return_item": ["{product} is too small, sending it back", "how can i get a return slip",
                    "i'd like to give back the {product}", "what's the process to ship something back",
                    "return request for {order}"],
    "refund_status": ["money for {order} still not on my card", "when is my reimbursement coming",
                      "refund hasn't hit my account", "any news about getting repaid",
                      "i'm waiting on a credit for the returned {product}"],
    "change_delivery_address": ["i need the parcel to go to {city} instead", "new shipping destination for {order}",
                                "fix the street name on my delivery", "redirect my package to work",
                                "update where you're sending my {product}"],
    "delivery_problem": ["box came crushed and {product} is scratched", "the tracking says delivered, i have nothing",
                         "courier didn't show up today again", "received someone else's parcel",
                         "my shipment is stuck for {days} days"],
    "product_availability": ["will you get more {product} soon", "{product} out of stock?",
                             "can i still order the {product} in red", "when are you restocking",
                             "does the {city} shop carry the {product}"],
    "payment_problem": ["the bank took money twice", "my visa got rejected at checkout",
                        "transaction error while paying for {order}", "got billed but no confirmation",
                        "can't complete payment"],
    "discount_code": ["voucher says expired", "is there any promotion right now",
                      "how do i use my coupon", "code isn't giving me the reduction",
                      "any discount for students"],
    "account": ["locked out of my profile", "need to change the password", "can't sign in to my account",
                "please remove my data and close my account", "update the email on my profile"],
    "complaint": ["i'm really unhappy with how this was handled", "this company is a joke",
                  "shocking service, never again", "the {product} broke after one day, appalling",
                  "i'm fed up with your excuses"],
    "talk_to_human": ["get me a person on the line", "i need to speak with your staff",
                      "is there a human i can chat with", "put me through to support please",
                      "no more bot, real agent"],
}

GREETINGS = ["", "", "", "hi ", "hello, ", "hey there ", "good morning ", "hallo "]
ENDINGS = ["", "", "?", "!", ".", "!!", " thanks", " pls", " 🙏", " 😡", " 😊"]


def typo(text):
    chars = list(text)
    for _ in range(rng.choice([0, 0, 0, 1, 1, 2])):
        if len(chars) < 4:
            break
        i = rng.randrange(1, len(chars) - 1)
        kind = rng.choice(["swap", "drop", "double"])
        if kind == "swap":
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
        elif kind == "drop":
            del chars[i]
        else:
            chars.insert(i, chars[i])
    return "".join(chars)


def case(text):
    return rng.choice([str.lower, str.lower, str.capitalize, str.upper, lambda s: s])(text)


def utterance(template):
    return case(typo(rng.choice(GREETINGS) + fill(template) + rng.choice(ENDINGS))).strip()


def write(name, phrasings, per_intent):
    rows = [(utterance(rng.choice(ts)), intent) for intent, ts in phrasings.items() for _ in range(per_intent)]
    rng.shuffle(rows)
    with open(os.path.join(HERE, name), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "intent"])
        w.writerows(rows)
    return len(rows)


print("train", write("train.csv", TRAIN, 300), "heldout", write("heldout.csv", HELDOUT, 60))
