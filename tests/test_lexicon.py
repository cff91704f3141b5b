"""The cue layer's hard cases: negation, hypotheticals, amounts, calm safety reports,
furious trivial complaints, sarcasm."""
import pytest

from triage.config import SeverityRule
from triage.lexicon import Lexicons, chinese_number, find_amounts
from triage.severity import decide


@pytest.fixture(scope="module")
def lex():
    return Lexicons()


def strength(lex, text):
    return lex.cue_strength(lex.severity_cues(text))


def _grade(lex, text):
    """The cue layer's own grade (None: no cue reaches a threshold), as the decision rule reads it."""
    return decide({"一般": 1.0, "重点": 0.0, "危机": 0.0}, lex.severity_cues(text), SeverityRule()).cue_label


def test_calm_safety_report_is_a_crisis_cue(lex):
    s = strength(lex, "您好，我的车今天高速上刹车突然失灵，还好没出事，麻烦安排检查。")
    assert s["危机"] >= SeverityRule().cue_crisis


def test_negated_injury_does_not_count(lex):
    cues = lex.severity_cues("车被刮了一下，人没有受伤，就是保险杠掉漆")
    assert any(m.status == "negated" for m in cues)
    assert strength(lex, "车被刮了一下，人没有受伤，就是保险杠掉漆")["危机"] == 0


def test_negation_does_not_cancel_a_real_hazard(lex):
    s = strength(lex, "刹车失灵撞了护栏，幸好没有受伤")
    assert s["危机"] >= 0.6


def test_false_negators_do_not_negate(lex):
    assert strength(lex, "非常危险，电梯困人半小时")["危机"] >= 0.6


def test_media_threat_is_major_not_crisis(lex):
    cues = lex.severity_cues("如果再不处理我就曝光到微博")
    assert cues and all(m.status == "hypothetical" and m.grade == "重点" for m in cues if m.signal == "media")
    s = lex.cue_strength(cues)
    assert s["危机"] == 0 and s["重点"] > 0


def test_completed_exposure_is_crisis(lex):
    assert strength(lex, "视频已经发到微博上热搜了")["危机"] >= 0.6


def test_self_harm_threat_is_never_discounted(lex):
    assert strength(lex, "再不退钱我就跳楼")["危机"] >= 0.9
    assert strength(lex, "被催收逼得真的想死，活不下去了")["危机"] >= 0.6    # the idiom's exclusion is narrow


@pytest.mark.parametrize("text, value", [("损失3万元", 30000), ("才3元", 3), ("两千块", 2000),
                                         ("花了1.5万元", 15000), ("三万五千元", 35000)])
def test_amounts(text, value):
    assert [v for _, _, v in find_amounts(text)] == [value]


def test_large_amount_is_major_small_is_nothing(lex):
    assert strength(lex, "被多扣了3万元")["重点"] >= 0.5
    assert strength(lex, "被多扣了3元")["重点"] == 0


def test_chinese_numbers():
    assert chinese_number("十二") == 12 and chinese_number("两百") == 200 and chinese_number("一万零五") == 10005


def test_number_cues_respect_digit_boundaries(lex):
    assert not [m for m in lex.severity_cues("订单号1231567890") if m.signal == "regulator"]
    assert [m for m in lex.severity_cues("我要打12315投诉") if m.signal == "regulator"]


def test_repeat_contacts(lex):
    assert any(m.signal == "repeat" for m in lex.severity_cues("这是我第三次打电话了，一直没解决"))


def test_furious_trivial_complaint_has_no_severity_cue_but_strong_emotion(lex):
    text = "气死我了！！！外卖少给了一包番茄酱，你们是干什么吃的！！"
    assert strength(lex, text) == {"重点": 0.0, "危机": 0.0}
    vec = lex.signal_vector(text)
    assert vec[11] > 0.5       # exclamation marks


def test_sarcasm_reads_as_negative(lex):
    emos = lex.emotion_words("服务真是太好了，等了三天没人理，呵呵")
    assert emos  # a sarcasm marker or complaint word is found; the learned head decides the class


def test_negated_satisfaction_is_dissatisfaction(lex):
    emos = lex.emotion_words("我很不满意")
    assert any(m.signal == "angry" and m.weight > 0 for m in emos)


def test_offsets_point_into_original_text(lex):
    text = "ＡＢＣ先生：刹车失灵了！"
    for m in lex.severity_cues(text):
        assert text[m.start:m.end] == m.text


def test_decision_never_downgrades_strong_crisis_cue(lex):
    cues = lex.severity_cues("车子起火冒烟了")
    d = decide({"一般": 0.9, "重点": 0.08, "危机": 0.02}, cues, SeverityRule())
    assert d.label == "危机" and d.model_label == "一般" and d.disagreement


def test_decision_is_ordinal():
    d = decide({"一般": 0.5, "重点": 0.3, "危机": 0.2}, [], SeverityRule())
    assert d.label == "重点"   # P(≥重点) = 0.5 ≥ major_threshold


@pytest.mark.parametrize("text", ["后刹车片磨损到报警线了，4S店要收费更换", "仪表盘故障报警灯一直亮",
                                  "车机的在线媒体用不了", "最后受伤害的还是我们消费者", "催收电话把我手机都打炸了",
                                  "计划修建110kV高压线离小区太近", "自动扣款110元，我没开通过",
                                  "催收上门闹得家里吵架，想死的心都有了"])
def test_harmless_phrases_that_contain_a_cue_do_not_fire(lex, text):
    assert not [m for m in lex.severity_cues(text) if m.grade == "危机" and m.status == "asserted"], text


def test_real_police_and_media_still_fire(lex):
    assert _grade(lex, "对方动手打人，我已经打了110") == "危机"
    assert _grade(lex, "这件事电视台已经报道了") == "危机"


def test_a_collectors_claim_of_police_or_lawsuit_is_pressure_not_fact(lex):
    for text in ("机器人打电话称已报案，文书发到户籍地", "催收谎称已经起诉我了", "对方冒充公安局打电话"):
        assert not [m for m in lex.severity_cues(text) if m.grade == "危机" and m.status == "asserted"], text
    assert _grade(lex, "被打了以后我已报案，派出所已经立案") == "危机"


def test_a_condition_governs_the_consequence_in_the_next_clause(lex):
    # "如果再不处理我就曝光" is a threat, also when a comma splits condition and consequence
    for text in ("如果三天内不处理，我就去找媒体曝光", "望贵公司合理处理，如若不然，我会求助媒体",
                 "再不退款，我就去起诉", "催收威胁我说非要等到传票才还"):
        cues = lex.severity_cues(text)
        assert not [m for m in cues if m.grade == "危机" and m.status == "asserted"], text
        assert any(m.status == "hypothetical" for m in cues) and _grade(lex, text) != "危机", text
    # one clause back only, and only when the next clause says what will follow
    assert _grade(lex, "如果你们不管，我们也没办法。昨天已经有记者来采访了") == "危机"
    assert _grade(lex, "如果不处理，昨天刹车失灵撞了车") == "危机"
    assert _grade(lex, "要是你们还不管，我们早就已经找过记者了") == "危机"      # done, not threatened
    assert _grade(lex, "再不解决，我就跳楼") == "危机"           # a threat to self is never discounted


def test_figures_of_speech_about_explosions_and_crowds_do_not_fire(lex):
    for text in ("这是信息大爆炸的时代，可我们村连公告都看不到", "商场人流聚集效应很强，停车太难"):
        assert not [m for m in lex.severity_cues(text) if m.grade == "危机" and m.status == "asserted"], text


def test_intimidation_by_collectors_is_major_not_crisis(lex):
    assert _grade(lex, "催收员打电话恐吓我父母") == "重点"
    assert _grade(lex, "催收的扬言要带人上门打断腿") == "危机"


def test_loss_of_power_while_driving_is_a_crisis_even_when_terse(lex):
    for text in ("行驶过程中断电两次", "高速上方向盘打不动了"):
        assert _grade(lex, text) == "危机", text


# The four kinds of crisis that LABELS.md's boundary cases spell out, told in ordinary words,
# each beside cases that must not fire.
PRESENT_DANGER = ["方向盘高速时突然变重打不动", "车开着开着档位自己跳到空挡", "楼道堆满纸箱电线乱拉",
                  "电梯门没关就往上走", "燃气灶关了还能闻到味", "学校门口的施工坑没有围挡",
                  "下雨天刹车打滑，车尾甩了出去", "渣土车天天超载在市区跑", "我们喝的河水被上游工厂排污污染了"]
MANY_PEOPLE = ["我们小区三百多户停水一周", "我们车间十几个人三个月没发工资", "同款车主建了维权群",
               "村里几十户的井水发黄", "11名工人的工资被拖欠", "全体村民联名反映垃圾站选址"]
HARM_DONE = ["孩子吃了以后上吐下泻住院", "催收打到单位，我气得心脏病发作住了院", "理赔一直不批，孩子化疗的钱交不上",
             "被逼得整夜失眠想不开", "用了这个产品以后我得了抑郁症", "搞得我家破人亡"]
LAW_IN_MOTION = ["我已经起诉，下周开庭", "法院已经立案", "派出所已经受理", "目前案件正在诉讼中", "公安已立案侦查"]
MUST_NOT_FIRE = ["请问刹车片多久需要更换？", "听说这款车刹车会失灵，是真的吗？", "网上传言这批车方向盘会锁死",
                 "三年前打过官司，早就结案了", "之前报过警，调解结束了", "我们一家三口去吃饭，菜太咸了",
                 "我们家的快递三天没到", "很多人都遇到过这种情况，就是退款慢", "如果再不处理我就去起诉",
                 "万一刹车失灵怎么办", "车子有异响，但不影响驾驶", "刹车没有失灵，只是有点异响"]


@pytest.mark.parametrize("text", PRESENT_DANGER + MANY_PEOPLE + HARM_DONE + LAW_IN_MOTION)
def test_each_kind_of_crisis_in_plain_words_fires(lex, text):
    assert _grade(lex, text) == "危机", (text, lex.severity_cues(text))


@pytest.mark.parametrize("text", MUST_NOT_FIRE)
def test_questions_rumours_settled_cases_and_one_familys_we_do_not_fire(lex, text):
    assert _grade(lex, text) != "危机", (text, lex.severity_cues(text))


def test_a_part_failing_while_in_use_weighs_more_than_the_same_part_at_rest(lex):
    moving = strength(lex, "行驶中仪表盘突然黑屏")["危机"]
    parked = strength(lex, "停车以后仪表盘黑屏")["危机"]
    assert moving > parked


def test_counted_groups_need_people_and_more_than_one_household():
    from triage.lexicon import find_groups
    assert find_groups("三百多户")[0][2] >= 300
    assert find_groups("十几个人") and find_groups("11名工人")
    assert not find_groups("三个月") and not find_groups("两个人") and not find_groups("两家公司") \
        and not find_groups("一家三口") and not find_groups("我们2户") and not find_groups("l5车主") \
        and not find_groups("编号a5041客户")
