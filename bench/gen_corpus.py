#!/usr/bin/env python3
"""Deterministic benchmark corpus for bulletin.

    gen_corpus.py N SECTIONS OUT_DIR [--seed S] [--subscribers K]
                  [--order shuffled|chronological]
                  [--no-articles] [--articles-path PATH]

Writes into OUT_DIR:
  articles.jsonl    N article records, one JSON object a line, in shuffled
                    order (ids follow publication order, lines do not); with
                    `--order chronological`, the same lines sorted by
                    publication time, as CMS exports come (ascending id)
  feeds.toml        a bulletin config for them (SECTIONS sections, ~10% of
                    them children of another), with [digest] and [smtp]
  subscribers.toml  K digest subscribers (default 1000), ~10% without a
                    `sections` key (= every section)

Same arguments (and the same CPython minor version) -> byte-identical files.
Each file has its own random stream, so K does not change the articles, and
the order does not change the records: both orders hold the same lines.
`--no-articles` writes only the config and subscribers; `--articles-path`
sets the config's `[input] paths` entry (e.g. "../articles.jsonl" for a
config folder next to an existing corpus).

Plain CPython, no dependencies. About 2 KB a record: 1,000,000 records are
about 2 GB.
"""

import argparse
import itertools
import json
import os
import random
import sys
import time

# --- vocabulary: real words of Chinese regional news --------------------------

PLACES = (
    "郑州 洛阳 开封 新乡 安阳 南阳 信阳 周口 商丘 驻马店 平顶山 许昌 漯河 焦作 濮阳 鹤壁 "
    "三门峡 济源 巩义 登封 新郑 中牟 荥阳 新密 兰考 尉氏 杞县 通许 偃师 孟津 栾川 嵩县 "
    "汝阳 宜阳 洛宁 伊川 林州 滑县 内黄 汤阴 长垣 辉县 卫辉 获嘉 原阳 延津 封丘 修武 "
    "博爱 武陟 温县 沁阳 孟州 禹州 长葛 鄢陵 襄城 舞钢 汝州 宝丰 叶县 鲁山 郏县 邓州 "
    "西峡 淅川 内乡 镇平 方城 南召 社旗 唐河 新野 桐柏 固始 潢川 光山 商城 新县 罗山 "
    "息县 淮滨 项城 鹿邑 郸城 太康 西华 商水 沈丘 扶沟 永城 夏邑 虞城 柘城 宁陵 睢县 "
    "民权 遂平 西平 上蔡 汝南 平舆 新蔡 正阳 确山 泌阳 灵宝 义马 渑池 卢氏 金水区 "
    "二七区 管城区 惠济区 中原区 郑东新区 航空港区 高新区 经开区 北京 上海 广州 深圳 "
    "武汉 西安 合肥 济南 石家庄 太原 长沙 成都 重庆 杭州 南京 天津"
).split()

TOPICS = (
    "基层干部 群众路线 乡村振兴 营商环境 高质量发展 黄河流域生态保护 郑州航空港 中欧班列 "
    "自贸试验区 新能源汽车 数字经济 人工智能 5G基站 医保改革 义务教育 高考 中考 招聘会 "
    "就业 社保 养老服务 托育服务 住房公积金 房地产市场 城市更新 老旧小区改造 地铁 高铁 "
    "交通管制 天气 降雨 寒潮 防汛 抗旱 秋粮收购 小麦 夏粮 粮食安全 高标准农田 文旅 "
    "牡丹文化节 少林寺 龙门石窟 清明上河园 马拉松 足球 篮球 中超 CBA 全运会 电影 综艺 "
    "演唱会 疫苗 流感 三甲医院 中医药 科技创新 芯片 大数据 网络安全 反诈 消费券 夜经济 "
    "直播带货 电商 物流 快递 外贸 进出口 招商引资 重点项目 产业园 专精特新 中小企业 "
    "普惠金融 个人所得税 减税降费 环境保护 蓝天保卫战 秸秆禁烧 垃圾分类 文明城市 "
    "志愿服务 安全生产 消防 食品安全 市场监管 扫黑除恶 法治建设 公益诉讼 信访 作风建设 "
    "廉政建设 巡视整改 人大代表 政协委员 两会 政府工作报告 干部素质 实干奉献 深入基层 "
    "群众呼声 脱贫攻坚 精准扶贫 产业扶贫 电子商务进农村 农村公路 危房改造 饮水安全 "
    "医共体 家庭医生 分级诊疗 健康码 核酸检测 体育彩票 全民健身 研学旅行 非遗 豫剧 "
    "博物馆 图书馆 文化惠民 景区 门票优惠 假日经济 黄金周 春运 暑运 网约车 共享单车 "
    "停车难 充电桩 氢能 光伏 风电 储能 碳达峰 碳中和 节能减排 河长制 南水北调 "
    "引黄灌溉 森林防火 野生动物保护 生物多样性 高校毕业生 退役军人 残疾人 留守儿童 "
    "未成年人保护 校园安全 双减 课后服务 职业教育 技能培训 人才引进 青年创业 "
    "民营经济 国企改革 上市公司 债券 银行 保险 证券 股市 基金 楼市 车市 油价 "
    "猪肉价格 菜篮子 物价 最低工资 劳动仲裁 欠薪 农民工 户籍制度 居住证 "
    "智慧城市 政务服务 一网通办 放管服 不动产登记 电动车 头盔 酒驾 超载 "
    "高速公路 机场 航线 货运 跨境电商 保税区 会展经济 数字政府"
).split()

ORGS = (
    "市委 市政府 县委 县政府 市委宣传部 市场监管局 教育局 气象台 交警支队 人社局 卫健委 "
    "发改委 文旅局 住建局 农业农村局 生态环境局 公安局 税务局 商务局 工信局 团市委 "
    "妇联 总工会 红十字会 应急管理局 自然资源局 水利局 交通运输局 城管局 财政局 "
    "民政局 司法局 医保局 统计局 消防救援支队 人民法院 人民检察院 疾控中心"
).split()

TIMES = (
    "日前 近日 昨日 今日 本周 上周 今年以来 上半年 前三季度 截至目前 记者从有关部门获悉， "
    "据了解， 据悉， 记者注意到， 据统计， 与此同时， 值得一提的是， 另外， 此外， 目前， "
    "下一步， 今后， 同时，"
).split()

VERBS = (
    "召开 部署 推进 出台 发布 启动 开展 举办 印发 落实 加快推进 全面推进 扎实推进 "
    "深入开展 着力破解 持续优化 研究部署 专题调研 督导检查 全面启动 积极探索 统筹推进"
).split()

OBJS = (
    "工作会议 专项行动 实施方案 三年行动计划 试点工作 推进会 座谈会 现场观摩会 新闻发布会 "
    "政策措施 若干意见 工作要点 攻坚行动 集中整治 宣传周活动 培训班 表彰大会 签约仪式"
).split()

TAILS = (
    "，进一步提升群众获得感、幸福感、安全感|，推动各项工作落地见效|，确保取得实效|"
    "，为全市经济社会高质量发展提供有力支撑|，受到广大市民欢迎|，累计惠及群众{n}万人次|"
    "，同比增长{p}%|，总投资{n}亿元|，涉及企业{n}家|，新增就业岗位{n}个|，覆盖{n}个乡镇|"
    "，群众满意度达{p}%|，有关负责人表示将持续跟进|，切实把好事办实、把实事办好|"
    "，努力打通服务群众“最后一公里”|，力争年底前全面完成|，市民可关注官方公众号查询|"
    "，为群众办实事{n}件|，排查隐患{n}处|，整改问题{n}个|，发放补贴{n}万元|"
    "，接待游客{n}万人次|，实现营业收入{n}亿元|，比去年同期提前{n}天|"
    "，在全省率先实现全覆盖|，形成可复制可推广的经验|，让群众少跑腿、数据多跑路"
).split("|")

QUOTES = (
    "“我们将坚持问题导向，一件一件抓落实。”|“这项政策实实在在，老百姓得到了真正的实惠。”|"
    "“下一步，我们将加大工作力度，确保各项任务按期完成。”|“以前办事要跑好几趟，现在一次就办好了。”|"
    "“群众的烦心事就是我们的分内事。”|“希望有关部门能进一步完善配套设施。”|"
    "“今年的收成不错，心里踏实。”|“孩子上学近了，家长也省心了。”|"
    "“工作不是‘坐’出来的，而是‘做’出来的、‘跑’出来的。”|“只有俯下身子，才能听到群众的真心话。”"
).split("|")

SPEAKERS = (
    "有关负责人 相关负责人 一位市民 当地村民 一位企业负责人 社区工作人员 专家 "
    "该局工作人员 一线干部 驻村第一书记 志愿者 家长代表"
).split()

HEAD_TAILS = (
    "取得新进展 全面启动 再传捷报 工作推进会召开 迎来新机遇 这些变化值得关注 "
    "今日起正式实施 按下“快进键” 跑出“加速度” 交出亮眼成绩单 持续发力 提质增效 "
    "亮点纷呈 有了新变化 惠及千家万户 成效显著 扎实推进 开局良好 迈出新步伐 "
    "发布最新通知 出台新规 专项整治行动启动 现场会举行 正式开通 投入使用 "
    "周末举行 下周开幕 引发关注 获评全国先进 入选国家级名单 答记者问"
).split()

SURNAMES = list("王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文")
GIVEN = list("明华建国秀英晓峰文娟雨桐释伟芳娜敏静丽强磊军洋勇艳杰娟涛超霞平刚桂英鹏辉玲丹宇浩凯梅琳欣怡子涵梓轩浩然思远嘉怡俊杰佳琪志强海燕")
PEN = "杜鹃花 豫风 中原客 老街 青禾 麦穗 河洛 嵩山月 黄河边 墨语 闻道 石榴红 北窗 冬青 立言 清风 一苇 半夏 南山 拾光".split()
SOURCES = (
    "映象网 映象网综合 大河报 河南日报 郑州晚讯 洛阳广电 河南广播电视台 新华社 人民网 "
    "中国新闻网 央视新闻 河南商报 东方今报 郑州日报 洛阳日报 南阳日报 豫风评论 "
    "大象新闻 新乡日报 开封日报 商丘日报 信阳日报 周口日报 安阳日报 许昌日报 "
    "驻马店日报 焦作日报 平顶山日报 濮阳日报 漯河日报"
).split()

SECTION_NAMES = (
    "新闻中心 豫事说事 财经 汽车 体育 娱乐 健康 科技 教育 房产 旅游 文化 评论 图片 "
    "视频 法治 民生 三农 时政 国际 国内 社会 军事 历史 读书 美食 时尚 亲子 游戏 "
    "数码 家居 彩票 公益 专题 直播 理财 职场 求职 天气 交通"
).split()

SYLLABLES = (
    "li wang zhang liu chen yang zhao huang zhou wu xu sun hu zhu gao lin he guo ma luo "
    "ming hua jian guo xiu ying xiao feng wen juan yu tong wei fang na min jing qiang lei "
    "jun hai yan jie tao chao xia ping gang gui peng hui ling dan hao kai mei xin yi han"
).split()
DOMAINS = ["example.com", "example.org", "example.net", "mail.example.cn", "qq.example.com"]


def zipf_cum(n, s):
    """Cumulative Zipf weights for ranks 1..n (for random.choices)."""
    total, cum = 0.0, []
    for rank in range(1, n + 1):
        total += 1.0 / rank**s
        cum.append(total)
    return cum


def keyword_vocabulary(rng):
    words = list(dict.fromkeys(TOPICS))
    for place in PLACES:
        for topic in rng.sample(TOPICS, 18):
            words.append(place + topic)
    words = list(dict.fromkeys(words))
    rng.shuffle(words)
    return words  # ~2,900 keywords


def sentence_pool(rng, size):
    pool = []
    r = rng.random
    for _ in range(size):
        kind = r()
        n = rng.randint(2, 980)
        p = f"{rng.randint(1, 99)}.{rng.randint(0, 9)}"
        tail = rng.choice(TAILS).format(n=n, p=p)
        if kind < 0.55:
            s = (rng.choice(TIMES) + rng.choice(PLACES) + rng.choice(ORGS) + rng.choice(VERBS)
                 + rng.choice(TOPICS) + rng.choice(OBJS) + tail + "。")
        elif kind < 0.75:
            s = (rng.choice(PLACES) + rng.choice(TOPICS) + "工作" + rng.choice(HEAD_TAILS)
                 + "，" + rng.choice(ORGS) + rng.choice(VERBS) + rng.choice(TOPICS)
                 + rng.choice(OBJS) + tail + "。")
        elif kind < 0.9:
            s = rng.choice(SPEAKERS) + "表示：" + rng.choice(QUOTES)
        else:
            s = (f"截至{rng.randint(1, 12)}月底，{rng.choice(PLACES)}{rng.choice(TOPICS)}"
                 f"相关指标完成年度目标的{rng.randint(40, 120)}%{tail}。")
        pool.append(s)
    return pool


def make_sections(rng, count):
    sections = []
    for i in range(count):
        base = SECTION_NAMES[i % len(SECTION_NAMES)]
        title = base if i < len(SECTION_NAMES) else f"{base}{i // len(SECTION_NAMES) + 1}"
        sections.append({"id": f"s{i:03d}", "title": title, "parent": None})
    # About 10% are children of an earlier top-level section.
    children = max(1, round(count * 0.1)) if count >= 2 else 0
    candidates = list(range(1, count))
    rng.shuffle(candidates)
    child_set = set(candidates[:children])
    for i in sorted(child_set):
        roots = [j for j in range(i) if j not in child_set]
        if roots:
            sections[i]["parent"] = sections[rng.choice(roots)]["id"]
    return sections


def toml_str(s):
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def write_config(path, sections, articles_path):
    out = [
        "# Generated by bench/gen_corpus.py: a benchmark site.\n\n",
        "[site]\n",
        'title = "映象网"\n',
        'base_url = "https://news.example.cn/"\n',
        'language = "zh-CN"\n',
        'timezone = "Asia/Shanghai"\n',
        'description = "河南新闻门户（基准测试语料）"\n\n',
        "[input]\n",
        f"paths = [{toml_str(articles_path)}]\n\n",
        "[output]\n",
        'dir = "public"\n',
        "items = 50\n",
        'formats = ["rss", "atom"]\n\n',
    ]
    for s in sections:
        out.append("[[sections]]\n")
        out.append(f'id = "{s["id"]}"\n')
        out.append(f"title = {toml_str(s['title'])}\n")
        if s["parent"]:
            out.append(f'parent = "{s["parent"]}"\n')
        out.append("\n")
    out += [
        "[digest]\n",
        'subject = "{{site.title}} · {{date}} 要闻"\n',
        'subscribers = "subscribers.toml"\n',
        'state = "state/state.sqlite"\n',
        'window = "7d"\n',
        "related = 3\n",
        'unsubscribe_url = "https://news.example.cn/unsubscribe?token={{token}}"\n\n',
        "[smtp]\n",
        'transport = "smtp"\n',
        'host = "127.0.0.1"\n',
        "port = 2525\n",
        'security = "none"\n',
        'from = "映象网 <digest@news.example.cn>"\n',
        "connections = 4\n",
        "max_rate = 0\n",
    ]
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(out))


def write_subscribers(path, rng, sections, count):
    ids = [s["id"] for s in sections]
    cum = zipf_cum(len(ids), 0.7)
    out = ["# Generated by bench/gen_corpus.py: digest subscribers.\n\n"]
    for i in range(count):
        email = (rng.choice(SYLLABLES) + rng.choice(SYLLABLES) + "." + str(i + 1)
                 + "@" + rng.choice(DOMAINS))
        out.append("[[subscribers]]\n")
        out.append(f'email = "{email}"\n')
        if rng.random() < 0.95:
            name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.randint(1, 2)))
            out.append(f'name = "{name}"\n')
        if rng.random() >= 0.10:
            picked = dict.fromkeys(rng.choices(ids, cum_weights=cum, k=rng.randint(1, 4)))
            out.append("sections = [" + ", ".join(f'"{s}"' for s in picked) + "]\n")
        out.append("\n")
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("".join(out))


def write_articles(path, rng, sections, n, chronological=False):
    # Local time is +08:00 everywhere (Asia/Shanghai has had no DST since 1991).
    end = 1793462400  # 2026-11-01T00:00:00+08:00
    start = end - 3 * 365 * 86400
    day_count = (end - start) // 86400
    # Newsroom hours: most stories between 07:00 and 23:00.
    hour_weights = [1, 1, 1, 1, 1, 2, 4, 8, 12, 14, 14, 13, 10, 10, 12, 12, 11, 10, 9, 9, 8, 6, 4, 2]
    hour_cum = list(itertools.accumulate(hour_weights))
    hours = rng.choices(range(24), cum_weights=hour_cum, k=n)
    stamps = sorted(start + rng.randrange(day_count) * 86400 + h * 3600 + rng.randrange(3600)
                    for h in hours)
    del hours
    order = list(range(n))
    rng.shuffle(order)

    pool = sentence_pool(rng, 40000)
    pool_n = len(pool)
    vocab = keyword_vocabulary(rng)
    kw_cum = zipf_cum(len(vocab), 1.05)
    sec_ids = [s["id"] for s in sections]
    sec_cum = zipf_cum(len(sec_ids), 0.8)
    authors = [rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.randint(1, 2)))
               for _ in range(1500)] + PEN
    editors = [rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=2)) for _ in range(60)]

    encode = json.JSONEncoder(ensure_ascii=False).encode
    rand = rng.random
    randint = rng.randint
    choice = rng.choice
    choices = rng.choices
    gmtime = time.gmtime
    size = 0
    pending = 0  # bytes in buf (chronological only)
    buf = []
    # Chronological: the shuffled file is written beside, with each line's
    # place, then copied line by line in publication order.
    target = path
    if chronological:
        path = path + ".shuffled.tmp"
        places = [0] * n
        lengths = [0] * n
    with open(path, "wb") as f:
        for k, idx in enumerate(order):
            ts = stamps[idx]
            t = gmtime(ts + 8 * 3600)
            date = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"
            clock = f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"
            published = f"{date} {clock}" if rand() < 0.1 else f"{date}T{clock}+08:00"
            num = idx + 1
            aid = f"a{num:07d}"
            section = choices(sec_ids, cum_weights=sec_cum)[0]

            title = choice(PLACES) + choice(TOPICS) + choice(HEAD_TAILS)
            if len(title) < 10:
                title = choice(PLACES) + title
            if rand() < 0.4:  # two-part headline: "A B"
                title += " " + choice(ORGS) + choice(VERBS) + choice(TOPICS) + choice(OBJS)
            if len(title) > 30:
                title = title[:30]

            paras = []
            for _ in range(randint(4, 6)):
                i = int(rand() * pool_n)
                c = randint(2, 4)
                paras.append("<p>" + "".join(pool[i:i + c] if i + c <= pool_n else pool[:c]) + "</p>")
            content = "\n".join(paras)

            kws = list(dict.fromkeys(choices(vocab, cum_weights=kw_cum, k=randint(2, 8))))
            rec = {
                "id": aid,
                "title": title,
                "section": section,
                "url": f"https://news.example.cn/{section}/{t.tm_year}/{t.tm_mon:02d}{t.tm_mday:02d}/{num}.html",
                "published": published,
                "author": choice(authors),
                "editor": choice(editors),
                "source": choice(SOURCES),
                "keywords": "；".join(kws) if rand() < 0.15 else kws,
                "summary": pool[int(rand() * pool_n)],
                "content_html": content,
            }
            rel = []
            for _ in range(randint(0, 5)):
                j = idx - randint(1, 2000)
                if j >= 0:
                    rel.append(f"a{j + 1:07d}")
            if rel and rand() < 0.03:
                rel.append(rel[0])  # CMS quirk: one related read listed twice
            rec["related"] = rel
            rec["views"] = int(rng.paretovariate(1.3) * 80)
            if rand() < 0.3:
                rec["image"] = f"https://img.example.cn/{t.tm_year}/{t.tm_mon:02d}/{num}.jpg"
            line = encode(rec)
            if chronological:
                data = line.encode("utf-8") + b"\n"
                places[idx] = size + pending
                lengths[idx] = len(data)
                pending += len(data)
                buf.append(data)
            else:
                buf.append(line)
            if len(buf) >= 5000:
                data = b"".join(buf) if chronological else ("\n".join(buf) + "\n").encode("utf-8")
                f.write(data)
                size += len(data)
                buf.clear()
                pending = 0
                if n >= 200000 and (k + 1) % 100000 == 0:
                    print(f"  {k + 1} records", file=sys.stderr, flush=True)
        if buf:
            data = b"".join(buf) if chronological else ("\n".join(buf) + "\n").encode("utf-8")
            f.write(data)
            size += len(data)
    if chronological:
        with open(path, "rb") as src, open(target, "wb") as out:
            for idx in range(n):
                src.seek(places[idx])
                out.write(src.read(lengths[idx]))
        os.remove(path)
    return size


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("n", type=int, help="number of articles")
    ap.add_argument("sections", type=int, help="number of sections (ids s000..)")
    ap.add_argument("out_dir")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--subscribers", type=int, default=1000, metavar="K")
    ap.add_argument("--order", choices=("shuffled", "chronological"), default="shuffled",
                    help="line order of articles.jsonl (default shuffled; chronological: "
                         "ascending publication time, as CMS exports come)")
    ap.add_argument("--no-articles", action="store_true",
                    help="write only feeds.toml and subscribers.toml")
    ap.add_argument("--articles-path", default="articles.jsonl",
                    help="the config's [input] paths entry (default articles.jsonl)")
    a = ap.parse_args()
    if not 1 <= a.sections <= 100000:
        ap.error("SECTIONS must be 1..100000 (ids s000, s001, ... s99999)")
    os.makedirs(a.out_dir, exist_ok=True)
    started = time.time()

    sections = make_sections(random.Random(f"{a.seed}:sections:{a.sections}"), a.sections)
    write_config(os.path.join(a.out_dir, "feeds.toml"), sections, a.articles_path)
    write_subscribers(os.path.join(a.out_dir, "subscribers.toml"),
                      random.Random(f"{a.seed}:subscribers"), sections, a.subscribers)
    if not a.no_articles:
        path = os.path.join(a.out_dir, "articles.jsonl")
        size = write_articles(path, random.Random(f"{a.seed}:articles"), sections, a.n,
                              chronological=a.order == "chronological")
        print(f"wrote {path}: {a.n} records, {size} bytes ({size / 1e6:.1f} MB, "
              f"{size / max(a.n, 1):.0f} B/record)")
    for name in ("feeds.toml", "subscribers.toml"):
        p = os.path.join(a.out_dir, name)
        print(f"wrote {p}: {os.path.getsize(p)} bytes")
    print(f"in {time.time() - started:.1f} s")


if __name__ == "__main__":
    main()
