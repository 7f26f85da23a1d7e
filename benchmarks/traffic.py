"""The benchmark's traffic: a seeded sensitive-word list and a realistic mix of signed callbacks.

Everything is generated from a seed, so every run (and every server in one run) sees the same
words and the same bodies. Only the query string changes between phases: `RequestTime` must be
fresh, since imhook rejects one more than `auth.window_seconds` (default 60 s) from now.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

APP_ID = "1400000000"
TOKEN = "bench-token"
CATEGORIES = ("abuse", "porn", "gambling", "fraud", "politics", "ads")
# Common Simplified characters for chat text; sensitive words are drawn from the same pool, so
# an innocent text can contain a listed word by accident, as in real traffic.
HANZI = ("的一是不了人我在有他这中大来上个国到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她"
         "里后小么心多天而能好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从"
         "动两长知民样现分将外但身些与高意进把法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等"
         "几很业最间新什打便位因重被走电四第门相次东政海口使教西再平真听世气信北少关并内加化由却代军产入先山"
         "五太水万市眼体别处总才场师书比住员九笑性通目华报立马命张活难神数件安表原车白应路期叫死常提感金何更"
         "反合放做系计或司利受光王果亲界及今京务制解各任至清物台象记边共风战干接它许八特觉望直服毛林题建南度"
         "统色字请交爱让认算论百吃义科怎元社术结六功指思非流每青管夫连远资队跟带花快条院变联言权往展该领传近")
ENGLISH = ("the and you this that have with for not are but what all were when there can your which their "
           "said will each about how out them then many some these would other into more like time could "
           "make than first been who now people made over did down only way find use may long little very "
           "after words just where most know get through back much before good new write our used too any "
           "day same right look think also around another came come work three must because does part even "
           "place well such here take why things help put years different away again went old number great "
           "tell say small every found still between name should home big give line set own under read "
           "last never left end along while might next sound below something thought both few those always "
           "show large often together asked house world going want school important until food keep "
           "children land side without once life enough took head above kind began almost live page got "
           "need far hand high year mother light country father let night picture being study second soon "
           "story since white ever paper hard near better best across during today however sure knew try "
           "told young sun whole hear example heard several change answer room against top learn point city "
           "play five using usually money seen car morning ok lol haha meeting tomorrow dinner weekend").split()
SYLLABLES = ("ba be bi bo bu ka ke ki ko ku la le li lo lu ma me mi mo mu na ne ni no nu ra re ri ro ru sa "
             "se si so su ta te ti to tu za ze zi zo zu bra cre dri flo gru pla sto tri vex zor qua").split()
NOISE = " .*_-~·，。、…"
FULL_WIDTH = {c: chr(ord(c) + 0xFEE0) for c in "abcdefghijklmnopqrstuvwxyz0123456789"}


def sign(token: str, request_time: int) -> str:
    """Sign = lower-case hex SHA-256 of the token followed by the decimal RequestTime (PROTOCOL.md §1)."""
    return hashlib.sha256(f"{token}{request_time}".encode()).hexdigest()


def make_words(seed: int, count: int) -> list[tuple[str, str]]:
    """`count` distinct (word, category): 60 % Chinese (2–4 characters), 40 % invented English.

    Each Chinese word starts with a character outside the chat pool, and English words are never
    everyday words, so a text carries a listed word only where `chat_text` plants one.
    """
    rng = random.Random(seed)
    rare = sorted(set(simplified_to_traditional()) - set(HANZI))
    common = set(ENGLISH)
    words: dict[str, str] = {}
    while len(words) < count:
        if rng.random() < 0.6:
            word = rng.choice(rare) + "".join(rng.choice(HANZI + "".join(rare[:400]))
                                              for _ in range(rng.choice((1, 2, 2, 3))))
        else:
            word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
        # fold_repeats reads "aa" as "a": a word with a doubled letter would be a shorter word.
        if len(word) < 2 or word in common or re.search(r"(.)\1", word):
            continue
        words.setdefault(word, rng.choice(CATEGORIES))
    return list(words.items())


@functools.cache
def simplified_to_traditional() -> dict[str, str]:
    """{Simplified: a Traditional form} for the CJK characters that have one (from OpenCC's data)."""
    from rules.text.normalize import t2s_char_map

    inverse: dict[str, str] = {}
    for traditional, simplified in sorted(t2s_char_map().items()):
        if traditional != simplified and "\u4e00" <= simplified <= "\u9fa5":
            inverse.setdefault(simplified, traditional)
    return inverse


def write_word_file(path: Path, words: list[tuple[str, str]]) -> Path:
    """One `word<TAB>category` per line, the format rules/text/words.py reads."""
    path.write_text("".join(f"{w}\t{c}\n" for w, c in words), encoding="utf-8")
    return path


def disguise(rng: random.Random, word: str) -> str:
    """The word plainly or as users evade filters: noise between characters, full-width,
    Traditional characters, repeated letters, upper case."""
    how = rng.choice(("plain", "noise", "noise", "wide", "traditional", "repeat", "upper"))
    if how == "noise":
        return rng.choice(NOISE).join(word)
    if how == "wide":
        return "".join(FULL_WIDTH.get(c, c) for c in word)
    if how == "traditional":
        return "".join(simplified_to_traditional().get(c, c) for c in word)
    if how == "repeat":
        return "".join(c * rng.choice((1, 1, 2, 3)) for c in word)
    return word.upper() if how == "upper" else word


CONTACTS = ("加我微信 wx_a1b2c3d4 详聊", "call me 138 0013 8000", "电话一三八零零一三八零零零",
            "mail me: deals@example.cn", "看这里 www.bigwin888.com", "qq 2837465912 私聊")


def chat_text(rng: random.Random, words: list[tuple[str, str]], length: int = 200) -> str:
    """About `length` characters of Chinese, English or mixed chat; about 1 in 6 carries a listed
    word (mostly disguised) and 1 in 12 contact details."""
    style = rng.random()
    parts: list[str] = []
    size = 0
    while size < length:
        if style < 0.5 or (style < 0.8 and rng.random() < 0.5):
            piece = "".join(rng.choice(HANZI) for _ in range(rng.randint(4, 12))) + rng.choice("，。！？ ")
        else:
            piece = " ".join(rng.choice(ENGLISH) for _ in range(rng.randint(3, 8))) + rng.choice(".,!? ") + " "
        parts.append(piece)
        size += len(piece)
    roll = rng.random()
    if roll < 1 / 6:
        parts.insert(rng.randrange(len(parts)), f" {disguise(rng, rng.choice(words)[0])} ")
    elif roll < 1 / 6 + 1 / 12:
        parts.insert(rng.randrange(len(parts)), f" {rng.choice(CONTACTS)} ")
    return "".join(parts)[: length + 40]


def text_elem(text: str) -> dict:
    return {"MsgType": "TIMTextElem", "MsgContent": {"Text": text}}


def msg_body(rng: random.Random, words, caller: str) -> list[dict]:
    """Mostly one text element; sometimes an image or face with it; sometimes a call invitation."""
    roll = rng.random()
    if roll < 0.04:  # a signaling invite: a custom element whose Data is JSON (PROTOCOL.md §6)
        data = {"businessID": 1, "inviteID": f"inv-{rng.getrandbits(48):x}", "inviter": caller, "actionType": 1,
                "inviteeList": [f"user{rng.randrange(5000)}"], "timeout": 30, "groupID": "",
                "data": json.dumps({"version": 4, "businessID": "av_call", "call_type": rng.choice((1, 2)),
                                    "room_id": rng.randrange(10**6), "data": {"cmd": "audioCall"}})}
        return [{"MsgType": "TIMCustomElem", "MsgContent": {"Data": json.dumps(data), "Desc": "", "Ext": "",
                                                           "Sound": ""}}]
    body = [text_elem(chat_text(rng, words))]
    if roll < 0.12:
        body.append({"MsgType": "TIMImageElem", "MsgContent": {
            "UUID": f"img{rng.getrandbits(40):x}", "ImageFormat": 1, "ImageInfoArray": [
                {"Type": t, "Size": 1000 * t, "Width": 100 * t, "Height": 100 * t,
                 "URL": f"https://im.example.com/{t}/{rng.getrandbits(40):x}.jpg"} for t in (1, 2, 3)]}})
    elif roll < 0.16:
        body.append({"MsgType": "TIMFaceElem", "MsgContent": {"Index": rng.randrange(100), "Data": "smile"}})
    return body


def user(rng: random.Random) -> str:
    return f"user{rng.randrange(5000)}"


def c2c_before(rng, words, now) -> dict:
    sender, seq, rand = user(rng), rng.randrange(10**5), rng.randrange(10**7)
    return {"CallbackCommand": "C2C.CallbackBeforeSendMsg", "From_Account": sender, "To_Account": user(rng),
            "MsgSeq": seq, "MsgRandom": rand, "MsgTime": now, "MsgKey": f"{seq}_{rand}_{now}",
            "OnlineOnlyFlag": 0, "MsgBody": msg_body(rng, words, sender), "CloudCustomData": ""}


def group_before(rng, words, now) -> dict:
    sender = user(rng)
    return {"CallbackCommand": "Group.CallbackBeforeSendMsg", "GroupId": f"@TGS#{rng.randrange(300)}",
            "Type": rng.choice(("Public", "Work", "Meeting", "AVChatRoom", "Community")), "From_Account": sender,
            "Operator_Account": sender, "Random": rng.randrange(10**7), "OnlineOnlyFlag": 0,
            "MsgBody": msg_body(rng, words, sender), "CloudCustomData": "", "EventTime": now * 1000}


def friend_add(rng, words, now) -> dict:
    requester = user(rng)
    items = [{"To_Account": user(rng), "Remark": "", "GroupName": "",
              "AddSource": rng.choice(("AddSource_Type_Android", "AddSource_Type_iOS", "AddSource_Type_Web")),
              "AddWording": chat_text(rng, words, 30)} for _ in range(rng.choice((1, 1, 2)))]
    return {"CallbackCommand": "Sns.CallbackPrevFriendAdd", "Requester_Account": requester,
            "From_Account": requester, "FriendItem": items, "AddType": "Add_Type_Both", "ForceAddFlags": 0,
            "EventTime": now * 1000}


def group_create(rng, words, now) -> dict:
    owner = user(rng)
    return {"CallbackCommand": "Group.CallbackBeforeCreateGroup", "Operator_Account": owner,
            "Owner_Account": owner, "Type": rng.choice(("Public", "Work", "Meeting")),
            "Name": chat_text(rng, words, 12), "CreateGroupNum": rng.randrange(30),
            "MemberList": [{"Member_Account": user(rng)} for _ in range(rng.randint(1, 5))], "EventTime": now * 1000}


def c2c_after(rng, words, now) -> dict:
    body = c2c_before(rng, words, now)
    return {**body, "CallbackCommand": "C2C.CallbackAfterSendMsg", "SendMsgResult": 0,
            "ErrorInfo": "send msg succeed", "UnreadMsgNum": rng.randrange(20)}


def group_after(rng, words, now) -> dict:
    body = group_before(rng, words, now)
    return {**body, "CallbackCommand": "Group.CallbackAfterSendMsg", "MsgSeq": rng.randrange(10**5),
            "MsgTime": now}


def state_change(rng, words, now) -> dict:
    return {"CallbackCommand": "State.StateChange", "EventTime": now * 1000,
            "Info": {"Action": rng.choice(("Login", "Logout")), "To_Account": user(rng), "Reason": "Register"}}


# (weight, maker): mostly before-send messages, as in a chat app's callback traffic.
MIX: tuple[tuple[float, Callable[..., dict]], ...] = (
    (0.45, c2c_before), (0.25, group_before), (0.05, friend_add), (0.03, group_create),
    (0.10, c2c_after), (0.08, group_after), (0.04, state_change),
)


@dataclass(frozen=True)
class Traffic:
    """Pre-built callback bodies; `requests(now)` signs them for a phase starting at `now`."""

    bodies: tuple[tuple[str, bytes], ...]  # (command, JSON body)

    @classmethod
    def build(cls, seed: int, words: list[tuple[str, str]], count: int, now: int) -> "Traffic":
        rng = random.Random(seed)
        weights, makers = zip(*MIX)
        bodies = []
        for maker in rng.choices(makers, weights, k=count):
            body = maker(rng, words, now)
            bodies.append((body["CallbackCommand"], json.dumps(body, ensure_ascii=False).encode()))
        return cls(tuple(bodies))

    def requests(self, now: int) -> list[tuple[str, bytes]]:
        """(path with signed query, body) for each body, signed with RequestTime `now`."""
        signature = sign(TOKEN, now)
        return [("/callback?" + urlencode({"SdkAppid": APP_ID, "CallbackCommand": command, "contenttype": "json",
                                           "ClientIP": "10.0.0.1", "OptPlatform": "Android",
                                           "RequestTime": now, "Sign": signature}), body)
                for command, body in self.bodies]

    def command_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for command, _ in self.bodies:
            counts[command] = counts.get(command, 0) + 1
        return counts
